package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Fatal errors: the client stops and does not reconnect.
var (
	ErrPinMismatch     = errors.New("pin_mismatch")
	ErrRelayIDMismatch = errors.New("relay_id_mismatch")
	ErrAuthFailed      = errors.New("auth_failed")
	ErrReplaced        = errors.New("replaced")
	ErrUnavailable     = errors.New("relay_unavailable")
	// ErrPermitRefused: the relay refused the join permit (unknown, expired or already used; RELAY.md).
	ErrPermitRefused = errors.New("permit_refused")
)

// Backoff between reconnects: from Min doubling to Max, each delay drawn uniformly from [d/2, d].
type Backoff struct{ Min, Max time.Duration }

// Client keeps one logged-in connection to the relay.
type Client struct {
	URL        string
	Pin        string // sha256/<base64>
	Key        ed25519.PrivateKey
	Backoff    Backoff
	Log        func(map[string]any)
	OnEnvelope func(wire []byte)
	// OnConnected is called after each successful login.
	OnConnected func()
	// OnRelayError sees each ERROR frame after the login (join_restricted, unknown_recipient, ...); may be nil.
	OnRelayError func(code string, ref []byte)
	// JoinPermit, when set, makes the first login an AUTH_JOIN carrying this permit secret (RELAY.md "Join permits");
	// it is spent by the first AUTH_OK, and later logins are plain AUTH.
	JoinPermit []byte
	Now        func() time.Time

	mu   sync.Mutex
	conn *websocket.Conn
}

// PinBytes decodes "sha256/<base64>" to the 32-byte SPKI hash.
func PinBytes(pin string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(pin, "sha256/"))
	if err != nil || len(b) != 32 || !strings.HasPrefix(pin, "sha256/") {
		return nil, errors.New("the relay pin must be sha256/<base64 of 32 bytes>")
	}
	return b, nil
}

// SPKIPin is the pin of a certificate's SubjectPublicKeyInfo DER.
func SPKIPin(spkiDER []byte) string {
	s := sha256.Sum256(spkiDER)
	return "sha256/" + base64.StdEncoding.EncodeToString(s[:])
}

// TLSConfig trusts exactly the pinned key: chain and host name checks are replaced by the SPKI pin, which
// VerifyConnection compares in constant time on every connection (resumed ones included).
func TLSConfig(pin []byte, onMismatch func(seen string)) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The pin, not a CA chain or the host name, is what is trusted; VerifyConnection enforces it.
		InsecureSkipVerify: true, //nolint:gosec // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrPinMismatch
			}
			seen := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if !ConstantTimeEqual(seen[:], pin) {
				if onMismatch != nil {
					onMismatch("sha256/" + base64.StdEncoding.EncodeToString(seen[:]))
				}
				return ErrPinMismatch
			}
			return nil
		},
	}
}

func (c *Client) log(ev map[string]any) {
	if c.Log != nil {
		ev["component"] = "relay-client"
		c.Log(ev)
	}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Send forwards one sealed envelope; ErrUnavailable when not logged in.
func (c *Client) Send(ctx context.Context, wire []byte) error {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return ErrUnavailable
	}
	frame := make([]byte, 0, 1+len(wire))
	frame = append(append(frame, TypeEnvelope), wire...)
	return conn.Write(ctx, websocket.MessageBinary, frame)
}

// Run connects, logs in and reads until ctx ends or a fatal error; it reconnects with backoff after any other
// disconnect. loggedIn is closed after the first successful login.
func (c *Client) Run(ctx context.Context, loggedIn chan<- struct{}) error {
	pin, err := PinBytes(c.Pin)
	if err != nil {
		return err
	}
	b := c.Backoff
	if b.Min == 0 {
		b.Min = 500 * time.Millisecond
	}
	if b.Max == 0 {
		b.Max = 30 * time.Second
	}
	delay := b.Min
	everLoggedIn := false
	for {
		ok, err := c.session(ctx, pin, func() {
			if !everLoggedIn {
				everLoggedIn = true
				close(loggedIn)
			}
			delay = b.Min
		})
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrReplaced) || errors.Is(err, ErrPinMismatch) || errors.Is(err, ErrRelayIDMismatch) || errors.Is(err, ErrPermitRefused) ||
			(!everLoggedIn && errors.Is(err, ErrAuthFailed)) {
			return err
		}
		_ = ok
		d := delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
		c.log(map[string]any{"level": "warn", "event": "relay_disconnected", "error": errString(err), "retryInMs": d.Milliseconds(), "hint": "reconnecting with backoff"})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
		delay *= 2
		if delay > b.Max {
			delay = b.Max
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (c *Client) session(ctx context.Context, pin []byte, onLogin func()) (bool, error) {
	var seen atomic.Pointer[string]
	transport := &http.Transport{TLSClientConfig: TLSConfig(pin, func(s string) { seen.Store(&s) }), Proxy: nil}
	defer transport.CloseIdleConnections()
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	conn, _, err := websocket.Dial(dctx, c.URL, &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: transport, Timeout: 15 * time.Second},
		CompressionMode: websocket.CompressionDisabled,
	})
	cancel()
	if err != nil {
		if p := seen.Load(); p != nil || errors.Is(err, ErrPinMismatch) {
			seenPin := ""
			if p != nil {
				seenPin = *p
			}
			c.log(map[string]any{"level": "error", "event": "pin_mismatch", "expected": c.Pin, "seen": seenPin,
				"hint": "the relay's certificate changed or this is not the pinned relay; re-enroll with the new pin if the change is expected"})
			return false, ErrPinMismatch
		}
		return false, err
	}
	conn.SetReadLimit(4 << 20)
	defer conn.CloseNow()

	// Login: the relay speaks first with CHALLENGE.
	lctx, lcancel := context.WithTimeout(ctx, 15*time.Second)
	defer lcancel()
	f, err := c.readFrame(lctx, conn)
	if err != nil {
		return false, err
	}
	if f.Type == TypeError {
		return false, fmt.Errorf("relay error before login: %s", f.Code)
	}
	if f.Type != TypeChallenge || f.Version != Version {
		return false, errors.New("relay did not start with a v1 CHALLENGE")
	}
	if !ConstantTimeEqual(f.RelayID, pin) {
		c.log(map[string]any{"level": "error", "event": "relay_id_mismatch", "hint": "the relay's challenge names another relay; it may be relaying someone else's challenge"})
		return false, ErrRelayIDMismatch
	}
	c.mu.Lock()
	permit := c.JoinPermit
	c.mu.Unlock()
	auth := EncodeAuth(c.Key, f.Challenge, f.RelayID, uint64(c.now().UnixMilli()))
	if permit != nil {
		auth = EncodeAuthJoin(c.Key, f.Challenge, f.RelayID, uint64(c.now().UnixMilli()), permit)
	}
	if err := conn.Write(lctx, websocket.MessageBinary, auth); err != nil {
		return false, err
	}
	f, err = c.readFrame(lctx, conn)
	if err != nil {
		return false, err
	}
	if f.Type == TypeError {
		if f.Code == "auth_failed" {
			c.log(map[string]any{"level": "error", "event": "auth_failed", "hint": "the relay refused this agent's key (clock skew, or a relay that admits only allowed keys)"})
			return false, ErrAuthFailed
		}
		if f.Code == "permit_refused" {
			c.log(map[string]any{"level": "error", "event": "permit_refused", "hint": "the relay refused the invite's permit: it is unknown to this relay, expired, or was already used; ask for a new invite"})
			return false, ErrPermitRefused
		}
		return false, fmt.Errorf("relay error during login: %s", f.Code)
	}
	pub := c.Key.Public().(ed25519.PublicKey)
	if f.Type != TypeAuthOK || f.Version != Version || !ConstantTimeEqual(f.ClientKey, pub) {
		return false, errors.New("relay answered the login with something other than AUTH_OK for this key")
	}
	lcancel()
	c.mu.Lock()
	c.conn = conn
	c.JoinPermit = nil // spent by this AUTH_OK
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.conn = nil
		c.mu.Unlock()
	}()
	c.log(map[string]any{"level": "info", "event": "relay_connected", "relay": c.URL, "queued": f.Queued})
	onLogin()
	if c.OnConnected != nil {
		c.OnConnected()
	}
	for {
		f, err := c.readFrame(ctx, conn)
		if err != nil {
			return true, err
		}
		switch f.Type {
		case TypeEnvelope:
			if c.OnEnvelope != nil {
				c.OnEnvelope(f.Envelope)
			}
		case TypeError:
			if f.Code == "replaced" {
				c.log(map[string]any{"level": "error", "event": "replaced", "hint": "another process logged in with this agent's key; this one stops"})
				return true, ErrReplaced
			}
			c.log(map[string]any{"level": "warn", "event": "relay_error", "code": f.Code, "ref": fmt.Sprintf("%x", f.Ref)})
			if c.OnRelayError != nil {
				c.OnRelayError(f.Code, f.Ref)
			}
		default:
			c.log(map[string]any{"level": "warn", "event": "unexpected_frame", "type": f.Type})
		}
	}
}

// readFrame returns the next binary frame that decodes; frames that do not (unknown types from a newer relay
// included) are logged and skipped, and the connection stays, as in the TypeScript client.
func (c *Client) readFrame(ctx context.Context, conn *websocket.Conn) (*Frame, error) {
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageBinary {
			continue
		}
		f, reason := Decode(data)
		if reason != "" {
			c.log(map[string]any{"level": "warn", "event": "relay_frame_refused", "reason": reason, "bytes": len(data)})
			continue
		}
		return f, nil
	}
}
