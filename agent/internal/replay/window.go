// Package replay is the receiver's replay window (protocol/ENVELOPE.md, "Replay window"): an RFC 6479 style
// bitmap over a uint64 counter, with the persisted form `{ v: 1, size, top, bitmap }` shared with the
// TypeScript implementation byte for byte.
package replay

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
)

const (
	DefaultSize = 1024
	maxSize     = 1 << 16
	blockBits   = 32
)

// Verdict of a check.
type Verdict string

const (
	OK     Verdict = "ok"
	Replay Verdict = "replay"
	TooOld Verdict = "too_old"
)

// ErrInvalidState is returned for a persisted window that is not exactly a valid one.
var ErrInvalidState = errors.New("replay window state is invalid")

// Window is not safe for concurrent use.
type Window struct {
	size   int
	blocks []uint32
	top    uint64
}

// New returns a fresh window; size must be a multiple of 32 in 32..65536.
func New(size int) (*Window, error) {
	if size <= 0 || size%blockBits != 0 || size > maxSize {
		return nil, fmt.Errorf("window size must be a multiple of 32 in 32..%d", maxSize)
	}
	return &Window{size: size, blocks: make([]uint32, size/blockBits+1)}, nil
}

// NewDefault returns a fresh window of DefaultSize.
func NewDefault() *Window {
	w, _ := New(DefaultSize)
	return w
}

// Top is the highest counter accepted so far (0 for a fresh window).
func (w *Window) Top() uint64 { return w.top }

func (w *Window) slot(c uint64) int { return int((c >> 5) % uint64(len(w.blocks))) }

// Check says whether counter would be accepted; it never mutates.
func (w *Window) Check(c uint64) Verdict {
	if c > w.top {
		return OK
	}
	if w.top-c >= uint64(w.size) {
		return TooOld
	}
	if (w.blocks[w.slot(c)]>>(c&31))&1 == 1 {
		return Replay
	}
	return OK
}

// Accept records counter; an error unless Check says OK.
func (w *Window) Accept(c uint64) error {
	if v := w.Check(c); v != OK {
		return fmt.Errorf("counter is %s", v)
	}
	if c > w.top {
		n := uint64(len(w.blocks))
		from, to := w.top>>5, c>>5
		if to-from >= n {
			for i := range w.blocks {
				w.blocks[i] = 0
			}
		} else {
			for b := from + 1; b <= to; b++ {
				w.blocks[b%n] = 0
			}
		}
		w.top = c
	}
	w.blocks[w.slot(c)] |= 1 << (c & 31)
	return nil
}

// Clone returns an independent copy.
func (w *Window) Clone() *Window {
	c := &Window{size: w.size, top: w.top, blocks: make([]uint32, len(w.blocks))}
	copy(c.blocks, w.blocks)
	return c
}

type state struct {
	V      json.RawMessage `json:"v"`
	Size   json.RawMessage `json:"size"`
	Top    json.RawMessage `json:"top"`
	Bitmap json.RawMessage `json:"bitmap"`
}

// MarshalJSON gives `{"v":1,"size":N,"top":"<decimal>","bitmap":"<hex>"}`.
func (w *Window) MarshalJSON() ([]byte, error) {
	buf := make([]byte, 4*len(w.blocks))
	for i, b := range w.blocks {
		buf[4*i] = byte(b >> 24)
		buf[4*i+1] = byte(b >> 16)
		buf[4*i+2] = byte(b >> 8)
		buf[4*i+3] = byte(b)
	}
	return json.Marshal(struct {
		V      int    `json:"v"`
		Size   int    `json:"size"`
		Top    string `json:"top"`
		Bitmap string `json:"bitmap"`
	}{1, w.size, strconv.FormatUint(w.top, 10), hex.EncodeToString(buf)})
}

var decimalU64 = regexp.MustCompile(`^(0|[1-9][0-9]{0,19})$`)
var lowerHex = regexp.MustCompile(`^[0-9a-f]*$`)

// Parse restores a window persisted with MarshalJSON, refusing anything else.
func Parse(data []byte) (*Window, error) {
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, ErrInvalidState
	}
	var v, size int
	var top, bitmap string
	if json.Unmarshal(s.V, &v) != nil || v != 1 || json.Unmarshal(s.Size, &size) != nil ||
		json.Unmarshal(s.Top, &top) != nil || json.Unmarshal(s.Bitmap, &bitmap) != nil {
		return nil, ErrInvalidState
	}
	if !decimalU64.MatchString(top) {
		return nil, ErrInvalidState
	}
	t, ok := new(big.Int).SetString(top, 10)
	if !ok || !t.IsUint64() {
		return nil, ErrInvalidState
	}
	w, err := New(size)
	if err != nil {
		return nil, ErrInvalidState
	}
	if len(bitmap) != 8*len(w.blocks) || !lowerHex.MatchString(bitmap) {
		return nil, ErrInvalidState
	}
	raw, _ := hex.DecodeString(bitmap)
	for i := range w.blocks {
		w.blocks[i] = uint32(raw[4*i])<<24 | uint32(raw[4*i+1])<<16 | uint32(raw[4*i+2])<<8 | uint32(raw[4*i+3])
	}
	w.top = t.Uint64()
	return w, nil
}
