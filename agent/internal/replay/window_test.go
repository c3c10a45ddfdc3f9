package replay

import (
	"math/rand/v2"
	"testing"
)

// The window against a naive model (a set of accepted counters): the same verdicts for random traffic around
// the top, and a persisted copy that behaves the same.
func TestWindowMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 20; round++ {
		w, _ := New(64)
		seen := map[uint64]bool{}
		var top uint64
		for i := 0; i < 3000; i++ {
			var c uint64
			switch r.IntN(4) {
			case 0:
				c = top + uint64(r.IntN(200))
			case 1:
				c = top + 1
			default:
				if top > 100 {
					c = top - uint64(r.IntN(100))
				}
			}
			want := OK
			switch {
			case c > top:
			case top-c >= 64:
				want = TooOld
			case seen[c]:
				want = Replay
			}
			if got := w.Check(c); got != want {
				t.Fatalf("round %d step %d counter %d top %d: got %s want %s", round, i, c, top, got, want)
			}
			if want == OK {
				if err := w.Accept(c); err != nil {
					t.Fatal(err)
				}
				seen[c] = true
				if c > top {
					top = c
				}
			} else if w.Accept(c) == nil {
				t.Fatal("accepted what Check refused")
			}
			if i%500 == 0 {
				b, _ := w.MarshalJSON()
				if w, _ = Parse(b); w == nil {
					t.Fatal("round trip")
				}
			}
		}
	}
}

func TestParseRefusesBadState(t *testing.T) {
	for _, s := range []string{`{}`, `{"v":2,"size":1024,"top":"0","bitmap":""}`, `{"v":1,"size":33,"top":"0","bitmap":""}`,
		`{"v":1,"size":32,"top":"01","bitmap":"0000000000000000"}`, `{"v":1,"size":32,"top":"18446744073709551616","bitmap":"0000000000000000"}`,
		`{"v":1,"size":32,"top":"0","bitmap":"000000000000000"}`, `{"v":1,"size":32,"top":"0","bitmap":"000000000000000G"}`,
		`{"v":1,"size":32,"top":0,"bitmap":"0000000000000000"}`} {
		if _, err := Parse([]byte(s)); err == nil {
			t.Errorf("%s accepted", s)
		}
	}
	if w, err := Parse([]byte(`{"v":1,"size":32,"top":"18446744073709551615","bitmap":"0000000000000000"}`)); err != nil || w.Top() != ^uint64(0) {
		t.Fatal(err)
	}
}
