package main

import (
	"encoding/hex"
	"strings"
	"testing"

	"orch/agent/internal/identity"
	"orch/agent/internal/join"
)

func TestAddDesktopProblem(t *testing.T) {
	a := make([]byte, 32)
	b := make([]byte, 32)
	b[0] = 1
	pin := "sha256/" + strings.Repeat("A", 43) + "="
	cfg := &identity.Config{V: 1, Desktop: identity.DesktopKeys{SignKey: hex.EncodeToString(a)}}
	cfg.Relay.URL, cfg.Relay.Pin = "wss://relay.test:7443/v1/relay", pin
	tok := &join.Token{RelayURL: "wss://relay.test:7443", DesktopSign: b}
	tok.RelayPin = make([]byte, 32)
	if p := addDesktopProblem(cfg, tok); p != "" {
		t.Fatalf("a new worker through the same relay (path implied) was refused: %s", p)
	}
	tok.DesktopSign = a
	if p := addDesktopProblem(cfg, tok); !strings.Contains(p, "already trusts") {
		t.Fatalf("the same desktop again: %q", p)
	}
	cfg.Desktops = []identity.DesktopKeys{{SignKey: hex.EncodeToString(b)}}
	tok.DesktopSign = b
	if p := addDesktopProblem(cfg, tok); !strings.Contains(p, "already trusts") {
		t.Fatalf("an added desktop again: %q", p)
	}
	tok.DesktopSign = make([]byte, 32)
	tok.DesktopSign[0] = 2
	tok.RelayURL = "wss://other.test:7443"
	if p := addDesktopProblem(cfg, tok); !strings.Contains(p, "an agent uses one relay") {
		t.Fatalf("another relay: %q", p)
	}
}
