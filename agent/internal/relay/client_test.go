package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testRelay is a minimal relay: CHALLENGE, AUTH check, AUTH_OK, then it echoes ENVELOPE frames back.
func testRelay(t *testing.T, replace bool) (*httptest.Server, string) {
	var relayID []byte
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		ctx := r.Context()
		challenge := make([]byte, 32)
		challenge[0] = 7
		now := uint64(time.Now().UnixMilli())
		_ = conn.Write(ctx, websocket.MessageBinary, EncodeChallenge(relayID, now, challenge))
		_, auth, err := conn.Read(ctx)
		if err != nil {
			return
		}
		if v := VerifyAuth(auth, &Issued{Challenge: challenge, RelayID: relayID, IssuedAt: now}, uint64(time.Now().UnixMilli())); v != "ok" {
			_ = conn.Write(ctx, websocket.MessageBinary, EncodeError("auth_failed", nil))
			return
		}
		f, _ := Decode(auth)
		_ = conn.Write(ctx, websocket.MessageBinary, EncodeAuthOK(f.ClientKey, 0))
		if replace {
			_ = conn.Write(ctx, websocket.MessageBinary, EncodeError("replaced", nil))
			return
		}
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			_ = conn.Write(ctx, websocket.MessageBinary, data)
		}
	}))
	srv.StartTLS()
	spki := srv.Certificate().RawSubjectPublicKeyInfo
	sum := sha256.Sum256(spki)
	relayID = sum[:]
	return srv, SPKIPin(spki)
}

func wsURL(s *httptest.Server) string {
	return strings.Replace(s.URL, "https://", "wss://", 1) + "/v1/relay"
}

func TestClientLoginAndEcho(t *testing.T) {
	srv, pin := testRelay(t, false)
	defer srv.Close()
	_, key, _ := ed25519.GenerateKey(nil)
	got := make(chan []byte, 1)
	c := &Client{URL: wsURL(srv), Pin: pin, Key: key, OnEnvelope: func(w []byte) { got <- w }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, in) }()
	select {
	case <-in:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("no login")
	}
	if err := c.Send(ctx, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-got:
		if string(w) != "\x01\x02\x03" {
			t.Fatalf("%x", w)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no echo")
	}
	cancel()
	<-done
}

func TestClientPinMismatchAndReplaced(t *testing.T) {
	srv, _ := testRelay(t, false)
	defer srv.Close()
	_, key, _ := ed25519.GenerateKey(nil)
	wrong := SPKIPin([]byte("another key"))
	c := &Client{URL: wsURL(srv), Pin: wrong, Key: key}
	if err := c.Run(context.Background(), make(chan struct{})); err != ErrPinMismatch {
		t.Fatalf("got %v", err)
	}
	srv2, pin := testRelay(t, true)
	defer srv2.Close()
	c = &Client{URL: wsURL(srv2), Pin: pin, Key: key}
	if err := c.Run(context.Background(), make(chan struct{})); err != ErrReplaced {
		t.Fatalf("got %v", err)
	}
}

func TestClientBacksOffWhileRelayDown(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	c := &Client{URL: "wss://127.0.0.1:1/v1/relay", Pin: SPKIPin([]byte("x")), Key: key, Backoff: Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.Run(ctx, make(chan struct{})); err != nil {
		t.Fatalf("a down relay is not fatal: %v", err)
	}
	if err := c.Send(context.Background(), []byte{1}); err != ErrUnavailable {
		t.Fatal(err)
	}
}
