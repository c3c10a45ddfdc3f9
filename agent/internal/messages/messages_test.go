package messages

import (
	"strings"
	"testing"
)

func TestDecodeValid(t *testing.T) {
	for _, s := range []string{
		`{"kind":"command","commandId":"wf/run/node","argv":["uptime"],"timeoutSeconds":30}`,
		`{"kind":"command","commandId":"a","argv":["echo","x"],"timeoutSeconds":1.0,"cwd":"/srv","maxOutputBytes":0}`,
		`{"kind":"ping","nonce":"n"}`,
		`{"kind":"pong","nonce":"n","agentVersion":"0.1.0","tier":"standard"}`,
		`{"kind":"result","commandId":"a","status":"finished","exitCode":0,"stdout":"","truncated":false,"durationMs":3}`,
		`{"kind":"result","commandId":"a","status":"refused","reason":"command_not_allowed: tier: x"}`,
		`{"kind":"result","commandId":"a","status":"finished","exitCode":137,"signal":"SIGKILL","timedOut":true}`,
	} {
		if _, err := Decode([]byte(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	long := strings.Repeat("x", 513)
	for _, s := range []string{
		`[]`, `null`, `"x"`, `{}`, `{"kind":"nope"}`,
		`{"kind":"command","commandId":"a","argv":["echo"],"timeoutSeconds":30,"extra":1}`,
		`{"kind":"command","commandId":"","argv":["echo"],"timeoutSeconds":30}`,
		`{"kind":"command","commandId":"` + long + `","argv":["echo"],"timeoutSeconds":30}`,
		`{"kind":"command","commandId":"a\n","argv":["echo"],"timeoutSeconds":30}`,
		`{"kind":"command","commandId":"a","argv":[],"timeoutSeconds":30}`,
		`{"kind":"command","commandId":"a","argv":[""],"timeoutSeconds":30}`,
		`{"kind":"command","commandId":"a","argv":["echo",1],"timeoutSeconds":30}`,
		`{"kind":"command","commandId":"a","argv":["e\u0000cho"],"timeoutSeconds":30}`,
		`{"kind":"command","commandId":"a","argv":["echo"],"timeoutSeconds":0}`,
		`{"kind":"command","commandId":"a","argv":["echo"],"timeoutSeconds":86401}`,
		`{"kind":"command","commandId":"a","argv":["echo"],"timeoutSeconds":1.5}`,
		`{"kind":"command","commandId":"a","argv":["echo"],"timeoutSeconds":"30"}`,
		`{"kind":"command","commandId":"a","argv":["echo"],"timeoutSeconds":30,"cwd":"rel"}`,
		`{"kind":"command","commandId":"a","argv":["echo"],"timeoutSeconds":30,"cwd":null}`,
		`{"kind":"ping","nonce":""}`,
		`{"kind":"result","commandId":"a","status":"finished"}`,
		`{"kind":"result","commandId":"a","status":"refused"}`,
		`{"kind":"result","commandId":"a","status":"finished","exitCode":0,"signal":"KILL"}`,
		`{"kind":"ping","nonce":"n"} x`,
		"{\"kind\":\"ping\",\"nonce\":\"\xff\"}",
	} {
		if m, err := Decode([]byte(s)); err == nil {
			t.Errorf("%s accepted: %+v", s, m)
		}
	}
}

func TestFitShrinksToTheLimit(t *testing.T) {
	big := strings.Repeat("\x01", 900*1024) // escapes to \u0001: 6x
	code := int64(0)
	r := Fit(Result{Kind: "result", CommandID: "a", Status: StatusFinished, ExitCode: &code, Stdout: &big, Stderr: &big}, MaxMessageBytes)
	b, err := Marshal(r)
	if err != nil || len(b) > MaxMessageBytes || r.Truncated == nil || !*r.Truncated {
		t.Fatalf("%d %v", len(b), err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"kind":"command","commandId":"a","argv":["echo"],"timeoutSeconds":30}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if m.Command != nil {
			if len(m.Command.Argv) == 0 || m.Command.Argv[0] == "" {
				t.Fatal("accepted an empty argv")
			}
		}
	})
}

// The command's approval attestation is decoded by internal/approval (strictly: a malformed one refuses the
// whole message), and the approvers message is exactly its fields.
func TestDecodeApprovalAndApprovers(t *testing.T) {
	k := strings.Repeat("a", 64)
	stmt := `{"v":1,"type":"orch-approval","tenant":"acme","workflowId":"wf","runId":"r","gate":"g","decision":"approve","releaseDigest":"` + k + `","approverKey":"` + k + `","at":1,"comment":""}`
	att := `{"approvals":[{"statement":` + stmt + `,"signature":"` + k + k + `"}],"released":[{"commandId":"wf/r/n","node":"n","agent":"web-1","tier":"standard","argv":["touch","/tmp/x"],"destructive":false}]}`
	m, err := Decode([]byte(`{"kind":"command","commandId":"wf/r/n","argv":["touch","/tmp/x"],"timeoutSeconds":5,"tenant":"acme","approval":` + att + `}`))
	if err != nil || m.Command.Approval == nil || m.Command.Approval.Released[0].Argv[1] != "/tmp/x" {
		t.Fatalf("valid attestation: %v", err)
	}
	for _, bad := range []string{
		`null`, `{}`, `{"approvals":[],"released":[]}`,
		strings.Replace(att, `"decision":"approve"`, `"decision":"maybe"`, 1),
		strings.Replace(att, `"at":1`, `"at":1.5`, 1),
		strings.Replace(att, `"comment":""`, `"comment":"","extra":1`, 1),
	} {
		if _, err := Decode([]byte(`{"kind":"command","commandId":"wf/r/n","argv":["touch"],"timeoutSeconds":5,"approval":` + bad + `}`)); err == nil {
			t.Errorf("malformed attestation accepted: %s", bad)
		}
	}
	m, err = Decode([]byte(`{"kind":"approvers","tenant":"acme","version":3,"keys":["` + k + `"],"signedAt":1767225600000}`))
	if err != nil || m.Approvers.Version != 3 || m.Approvers.Keys[0] != k {
		t.Fatalf("approvers: %v", err)
	}
	if m, err = Decode([]byte(`{"kind":"approvers","tenant":"acme","version":4,"keys":[],"signedAt":1}`)); err != nil || len(m.Approvers.Keys) != 0 {
		t.Fatalf("approvers with no keys: %v", err)
	}
	for _, bad := range []string{
		`{"kind":"approvers","tenant":"acme","version":-1,"keys":[],"signedAt":1}`,
		`{"kind":"approvers","tenant":"a/b","version":1,"keys":[],"signedAt":1}`,
		`{"kind":"approvers","tenant":"acme","version":1,"keys":["AA"],"signedAt":1}`,
		`{"kind":"approvers","tenant":"acme","version":1,"keys":["` + k + `","` + k + `"],"signedAt":1}`,
		`{"kind":"approvers","tenant":"acme","version":1,"keys":null,"signedAt":1}`,
		`{"kind":"approvers","tenant":"acme","version":1,"keys":[],"signedAt":1,"x":1}`,
		`{"kind":"approvers","tenant":"acme","version":1,"keys":[]}`,
	} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
