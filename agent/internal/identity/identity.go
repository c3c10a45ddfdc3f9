// Package identity holds the agent's own keys and its configuration (agent.json), kept the way sshd keeps host
// keys: files in the state directory (0700), private keys 0600, owned by the user the agent runs as, and the agent
// refuses to start when a key file is readable by group or others, or a file it trusts is writable by them.
//
//	agent-ed25519.key   hex of the 64-byte Ed25519 secret key (seed || public key), one line
//	agent-x25519.key    hex of the 32-byte X25519 secret, one line
//	agent-ed25519.pub / agent-x25519.pub   hex of the public keys (0644)
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"orch/agent/internal/envelope"
)

const (
	SignKeyFile     = "agent-ed25519.key"
	BoxKeyFile      = "agent-x25519.key"
	DefaultStateDir = "/var/lib/orch-agent"
)

// SetupError is a start-up problem the operator must fix; the CLI prints it and exits 1.
type SetupError struct {
	Code string // insecure_permissions, not_enrolled, corrupt_identity, bad_config
	Msg  string
}

func (e *SetupError) Error() string { return e.Msg }

func setupErr(code, format string, a ...any) error {
	return &SetupError{Code: code, Msg: fmt.Sprintf(format, a...)}
}

// Identity is the agent's two key pairs.
type Identity struct {
	SignPriv    ed25519.PrivateKey
	SignPub     []byte
	BoxSec      []byte
	BoxPub      []byte
	Fingerprint string
}

// ResolveStateDir: the flag, else $ORCH_AGENT_HOME, else /var/lib/orch-agent; made absolute.
func ResolveStateDir(flag string) string {
	d := flag
	if d == "" {
		d = os.Getenv("ORCH_AGENT_HOME")
	}
	if d == "" {
		d = DefaultStateDir
	}
	abs, err := filepath.Abs(d)
	if err != nil {
		return d
	}
	return abs
}

// Fingerprint is "SHA256:" + unpadded base64 of SHA-256(sign public || box public), like an ssh fingerprint.
func Fingerprint(signPub, boxPub []byte) string {
	h := sha256.New()
	h.Write(signPub)
	h.Write(boxPub)
	return "SHA256:" + strings.TrimRight(base64.StdEncoding.EncodeToString(h.Sum(nil)), "=")
}

// CheckOwnedAndPrivate is sshd's rule: owned by the user we run as, no bits of forbidden set, not a symlink.
func CheckOwnedAndPrivate(file string, forbidden os.FileMode, what string) error {
	st, err := os.Lstat(file)
	if err != nil {
		return err
	}
	if st.Mode()&os.ModeSymlink != 0 {
		return setupErr("insecure_permissions", "%s %s is a symbolic link; use the real path", what, file)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if uid := os.Getuid(); int(sys.Uid) != uid {
			return setupErr("insecure_permissions", "%s %s is owned by uid %d, not by the agent's user (uid %d); chown it", what, file, sys.Uid, uid)
		}
	}
	mode := st.Mode().Perm()
	if mode&forbidden != 0 {
		verb := "write"
		if forbidden&0o044 != 0 {
			verb = "read"
		}
		return setupErr("insecure_permissions", "%s %s has mode %04o, which lets other users %s it; run: chmod %04o %s", what, file, mode, verb, mode&^forbidden, file)
	}
	return nil
}

// EnsureStateDir creates the directory (0700) if missing, checks an existing one, and tightens it to 0700.
func EnsureStateDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", err
	}
	if err := CheckOwnedAndPrivate(abs, 0o022, "state directory"); err != nil {
		return "", err
	}
	if st, _ := os.Stat(abs); st != nil && st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(abs, 0o700); err != nil {
			return "", err
		}
	}
	return abs, nil
}

// WriteFileSync writes data to a temp file with mode, fsyncs it and moves it in place. exclusive refuses to
// replace an existing file (link + unlink fails if the target appeared meanwhile, unlike rename).
func WriteFileSync(file string, data []byte, mode os.FileMode, exclusive bool) error {
	tmp := fmt.Sprintf("%s.tmp-%d", file, os.Getpid())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if exclusive {
		defer os.Remove(tmp)
		return os.Link(tmp, file)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(file)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func readKeyFile(file string, n int) ([]byte, error) {
	if err := CheckOwnedAndPrivate(file, 0o077, "private key file"); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSpace(string(raw))
	if !regexp.MustCompile(fmt.Sprintf(`^[0-9a-f]{%d}$`, 2*n)).MatchString(text) {
		return nil, setupErr("corrupt_identity", "%s does not hold a %d-byte key in hex; restore it from backup or re-enroll", file, n)
	}
	return hex.DecodeString(text)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// Load reads the identity from stateDir; a *SetupError with code not_enrolled when there is none.
func Load(stateDir string) (*Identity, error) {
	dir, _ := filepath.Abs(stateDir)
	signFile, boxFile := filepath.Join(dir, SignKeyFile), filepath.Join(dir, BoxKeyFile)
	hs, hb := exists(signFile), exists(boxFile)
	if !hs && !hb {
		return nil, setupErr("not_enrolled", "no agent identity in %s; run: orch-agent enroll --state-dir %s ...", dir, dir)
	}
	if !hs || !hb {
		return nil, setupErr("corrupt_identity", "only one of %s and %s exists in %s; restore the other or re-enroll with a fresh state dir", SignKeyFile, BoxKeyFile, dir)
	}
	if err := CheckOwnedAndPrivate(dir, 0o022, "state directory"); err != nil {
		return nil, err
	}
	sign, err := readKeyFile(signFile, 64)
	if err != nil {
		return nil, err
	}
	box, err := readKeyFile(boxFile, 32)
	if err != nil {
		return nil, err
	}
	priv := ed25519.NewKeyFromSeed(sign[:32])
	pub := []byte(priv.Public().(ed25519.PublicKey))
	if subtle.ConstantTimeCompare(pub, sign[32:]) != 1 {
		return nil, setupErr("corrupt_identity", "%s is damaged (public half does not match the seed)", signFile)
	}
	boxPub, err := envelope.X25519Public(box)
	if err != nil {
		return nil, setupErr("corrupt_identity", "%s does not hold a usable X25519 key", boxFile)
	}
	return &Identity{SignPriv: priv, SignPub: pub, BoxSec: box, BoxPub: boxPub, Fingerprint: Fingerprint(pub, boxPub)}, nil
}

// LoadOrCreate loads the identity, creating a fresh one (and the state directory) if there is none.
func LoadOrCreate(stateDir string) (*Identity, bool, error) {
	dir, err := EnsureStateDir(stateDir)
	if err != nil {
		return nil, false, err
	}
	id, err := Load(dir)
	if err == nil {
		return id, false, nil
	}
	var se *SetupError
	if !errors.As(err, &se) || se.Code != "not_enrolled" {
		return nil, false, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	box := make([]byte, 32)
	if _, err := rand.Read(box); err != nil {
		return nil, false, err
	}
	boxPub, err := envelope.X25519Public(box)
	if err != nil {
		return nil, false, err
	}
	if err := WriteFileSync(filepath.Join(dir, SignKeyFile), []byte(hex.EncodeToString(priv)+"\n"), 0o600, true); err != nil {
		return nil, false, err
	}
	if err := WriteFileSync(filepath.Join(dir, BoxKeyFile), []byte(hex.EncodeToString(box)+"\n"), 0o600, true); err != nil {
		return nil, false, err
	}
	for name, key := range map[string][]byte{"agent-ed25519.pub": pub, "agent-x25519.pub": boxPub} {
		if err := WriteFileSync(filepath.Join(dir, name), []byte(hex.EncodeToString(key)+"\n"), 0o644, false); err != nil {
			return nil, false, err
		}
	}
	id, err = Load(dir)
	return id, true, err
}
