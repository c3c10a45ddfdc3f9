package identity

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"orch/agent/internal/envelope"
	"orch/agent/internal/policy"
)

const (
	ConfigFile    = "agent.json"
	AllowlistFile = "allowlist.yaml"
	RelayPath     = "/v1/relay"
)

// Config is agent.json: who may command this server and which relay to trust.
type Config struct {
	V     int `json:"v"`
	Relay struct {
		URL string `json:"url"`
		Pin string `json:"pin"`
	} `json:"relay"`
	Desktop DesktopKeys `json:"desktop"`
	// Desktops are trusted besides Desktop: more workers of the same cluster, each with its own identity, added by
	// `orch-agent join` with an invite from that worker. Each may send commands; the reply goes to the sender.
	Desktops      []DesktopKeys `json:"desktops,omitempty"`
	Tier          string        `json:"tier"`
	AllowlistFile string        `json:"allowlistFile"`
	EnrolledAt    string        `json:"enrolledAt"`
	// Name is the agent's name on the desktop (set by `orch-agent join`); informational.
	Name string `json:"name,omitempty"`
	// Tenants are the tenants whose commands this agent serves (set by `orch-agent join`, or `enroll --tenant`). Empty:
	// an agent enrolled before tenants, which serves every tenant of its desktop.
	Tenants []string `json:"tenants,omitempty"`
}

// DesktopKeys are a desktop's (or worker's) public keys, as `orch whoami` prints them.
type DesktopKeys struct {
	SignKey string `json:"signKey"`
	BoxKey  string `json:"boxKey"`
	// AddedAt is when `orch-agent join` added it (extra desktops only).
	AddedAt string `json:"addedAt,omitempty"`
}

// AllDesktops is every trusted desktop, the first one first.
func (c *Config) AllDesktops() []DesktopKeys {
	return append([]DesktopKeys{c.Desktop}, c.Desktops...)
}

// Trusts says whether the desktop with this signing key (hex) is trusted.
func (c *Config) Trusts(signKey string) bool {
	for _, d := range c.AllDesktops() {
		if d.SignKey == signKey {
			return true
		}
	}
	return false
}

var tenantName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)

// TenantProblem says why a tenant name is not valid; "" when fine.
func TenantProblem(t string) string {
	if tenantName.MatchString(t) {
		return ""
	}
	return fmt.Sprintf("tenant %q is not valid: use 1 to 100 letters, digits, \"_\" or \"-\"", t)
}

// Serves says whether a command of tenant t may run here: an agent with no tenants (enrolled before tenants) serves
// any; otherwise t must be one of its tenants (a command that names none is refused).
func (c *Config) Serves(t string) bool {
	if len(c.Tenants) == 0 {
		return true
	}
	for _, x := range c.Tenants {
		if x == t {
			return true
		}
	}
	return false
}

var (
	hex64      = regexp.MustCompile(`^[0-9a-f]{64}$`)
	PinPattern = regexp.MustCompile(`^sha256/[A-Za-z0-9+/]{43}=$`)
)

// RelayURLProblem says why a relay URL is wrong, naming the flag; "" when fine.
func RelayURLProblem(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		if len(raw) > 100 {
			raw = raw[:100]
		}
		return fmt.Sprintf("--relay %s is not a URL; expected wss://HOST:PORT", raw)
	}
	if u.Scheme != "wss" {
		return fmt.Sprintf("--relay must use wss:// (TLS), got %s:", u.Scheme)
	}
	if u.Hostname() == "" {
		return "--relay needs a host"
	}
	if u.User != nil {
		return "--relay must not contain credentials"
	}
	return ""
}

// WithRelayPath: `wss://HOST:PORT` means the relay's standard path; an explicit path is kept.
func WithRelayPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return raw
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = RelayPath
	}
	return u.String()
}

func PinProblem(pin string) string {
	if PinPattern.MatchString(pin) {
		return ""
	}
	return "--relay-pin must be sha256/<base64 SHA-256 of the certificate SPKI>, as `orch relay start` prints it"
}

func SignKeyProblem(name, key string) string {
	if hex64.MatchString(key) {
		return ""
	}
	return name + " must be 64 lowercase hex digits (an Ed25519 public key, as `orch whoami` prints it)"
}

func BoxKeyProblem(name, key string) string {
	if !hex64.MatchString(key) {
		return name + " must be 64 lowercase hex digits (an X25519 public key, as `orch whoami` prints it)"
	}
	// Sealing to a low-order key would be sealing to everyone; refuse it at enrollment, not per message.
	probe := make([]byte, 32)
	_, _ = rand.Read(probe)
	pub, _ := hex.DecodeString(key)
	shared, err := envelope.X25519(probe, pub)
	envelope.Zero(probe)
	if err != nil {
		return name + " is a low-order X25519 key; check you copied the desktop's box key"
	}
	envelope.Zero(shared)
	return ""
}

func TierProblem(t string) string {
	if _, ok := policy.ParseTier(t); ok {
		return ""
	}
	return "--tier must be one of read-only, standard, infrastructure"
}

// Validate checks a configuration; source names the file in errors.
func (c *Config) Validate(source string) error {
	problem := ""
	switch {
	case c.V != 1:
		problem = "unknown version"
	default:
		for _, p := range []string{RelayURLProblem(c.Relay.URL), PinProblem(c.Relay.Pin), SignKeyProblem("desktop.signKey", c.Desktop.SignKey),
			BoxKeyProblem("desktop.boxKey", c.Desktop.BoxKey), TierProblem(c.Tier)} {
			if p != "" {
				problem = p
				break
			}
		}
		for i, d := range c.Desktops {
			for _, p := range []string{SignKeyProblem(fmt.Sprintf("desktops[%d].signKey", i), d.SignKey), BoxKeyProblem(fmt.Sprintf("desktops[%d].boxKey", i), d.BoxKey)} {
				if problem == "" && p != "" {
					problem = p
				}
			}
		}
		for _, t := range c.Tenants {
			if p := TenantProblem(t); problem == "" && p != "" {
				problem = p
			}
		}
		if problem == "" && !filepath.IsAbs(c.AllowlistFile) {
			problem = "allowlistFile must be an absolute path"
		}
	}
	if problem != "" {
		return setupErr("bad_config", "%s: %s; fix it or run orch-agent enroll again", source, problem)
	}
	return nil
}

// LoadConfig reads and validates agent.json after the ownership and permission check.
func LoadConfig(stateDir string) (*Config, error) {
	file := filepath.Join(stateDir, ConfigFile)
	if !exists(file) {
		return nil, setupErr("not_enrolled", "no %s in %s; run: orch-agent enroll --state-dir %s ...", ConfigFile, stateDir, stateDir)
	}
	if err := CheckOwnedAndPrivate(file, 0o022, "agent configuration"); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var c Config
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&c); err != nil {
		return nil, setupErr("bad_config", "%s is not valid JSON; run orch-agent enroll again", file)
	}
	return &c, c.Validate(file)
}

// WriteConfig validates and writes agent.json atomically (0600, fsync).
func WriteConfig(stateDir string, c *Config) error {
	if err := c.Validate("new configuration"); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	return WriteFileSync(filepath.Join(stateDir, ConfigFile), append(b, '\n'), 0o600, false)
}
