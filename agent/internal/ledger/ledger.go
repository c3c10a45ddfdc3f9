// Package ledger is the agent's durable record (a bbolt file, fsync on every commit): every command it was asked
// to run, by (peer, commandId); the incoming replay window per peer; the outgoing envelope counter per peer; and
// the counters `orch-agent status` shows.
//
// A command's life cycle, written before and after running:
//
//	(none) --Claim--> received --MarkStarted--> started --MarkFinished--> finished
//
// What a duplicate command id gets:
//
//	finished  the stored result; the command never runs again
//	started   indeterminate: the agent died while it ran; only an operator can tell what it did
//	received  it may run: `started` is committed (fsync) strictly before the process is spawned
//
// The same id with a different argv or cwd is a conflict, never answered with another command's result.
package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"orch/agent/internal/replay"
)

var (
	bucketCommands = []byte("commands")
	bucketPeers    = []byte("peers")
	bucketCounters = []byte("counters")
)

// State of a command.
type State string

const (
	Received State = "received"
	Started  State = "started"
	Finished State = "finished"
)

type record struct {
	ArgvSHA256 string          `json:"argv_sha256"`
	State      State           `json:"state"`
	ReceivedAt int64           `json:"received_at"`
	StartedAt  int64           `json:"started_at,omitempty"`
	FinishedAt int64           `json:"finished_at,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
}

type peerRecord struct {
	Window     json.RawMessage `json:"window,omitempty"`
	OutCounter string          `json:"out_counter"`
}

// ClaimKind says what to do with an arriving command.
type ClaimKind int

const (
	Run ClaimKind = iota
	AlreadyFinished
	Indeterminate
	Conflict
)

// Claim is the answer of Claim.
type Claim struct {
	Kind      ClaimKind
	Result    json.RawMessage // AlreadyFinished: the stored result, byte for byte
	StartedAt int64           // Indeterminate
}

// ErrLocked: another process (a running agent) holds the ledger.
var ErrLocked = errors.New("ledger is in use by another orch-agent process")

// Ledger is safe for concurrent use. Writes are group-committed (see update).
type Ledger struct {
	db *bolt.DB

	mu         sync.Mutex
	queue      []*pendingWrite
	committing bool
}

type pendingWrite struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// update runs fn in a read-write transaction that is synced to disk before update returns. Writes that arrive while
// another commit is being synced are committed together in the next transaction (group commit): one pair of fsyncs
// for all of them, so under load (100 commands a second, five writes each) the agent is not bound by the disk's
// fsync rate, and a lone write waits for nothing. If a shared transaction fails, each of its writes is retried in a
// transaction of its own, so one write's error never fails another (each fn is re-runnable: it only reads and writes
// through tx and sets its caller's results).
func (l *Ledger) update(fn func(*bolt.Tx) error) error {
	w := &pendingWrite{fn: fn, done: make(chan error, 1)}
	l.mu.Lock()
	l.queue = append(l.queue, w)
	if !l.committing {
		l.committing = true
		l.mu.Unlock()
		l.commitQueued()
	} else {
		l.mu.Unlock()
	}
	return <-w.done
}

// commitQueued commits what is queued now; if more arrived meanwhile, another goroutine carries on, so the caller
// that started it is answered as soon as its own write is durable.
func (l *Ledger) commitQueued() {
	l.mu.Lock()
	batch := l.queue
	l.queue = nil
	l.mu.Unlock()
	l.commit(batch)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) > 0 {
		go l.commitQueued()
		return
	}
	l.committing = false
}

func (l *Ledger) commit(batch []*pendingWrite) {
	if len(batch) == 1 {
		batch[0].done <- l.db.Update(batch[0].fn)
		return
	}
	err := l.db.Update(func(tx *bolt.Tx) error {
		for _, w := range batch {
			if err := w.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		for _, w := range batch {
			w.done <- nil
		}
		return
	}
	for _, w := range batch {
		w.done <- l.db.Update(w.fn)
	}
}

// Open opens (creating, mode 0600) the ledger file. readOnly opens it shared, for `status`.
func Open(file string, readOnly bool, timeout time.Duration) (*Ledger, error) {
	if !readOnly {
		f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		f.Close()
		if err := os.Chmod(file, 0o600); err != nil {
			return nil, err
		}
	}
	db, err := bolt.Open(file, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: readOnly})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, ErrLocked
		}
		return nil, err
	}
	if !readOnly {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketCommands, bucketPeers, bucketCounters} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			db.Close()
			return nil, err
		}
	}
	return &Ledger{db: db}, nil
}

// Close closes the file.
func (l *Ledger) Close() error { return l.db.Close() }

// ArgvDigest identifies a command's argv and cwd: SHA-256 of the JSON [argv, cwd|null].
func ArgvDigest(argv []string, cwd *string) string {
	b, _ := json.Marshal([]any{argv, cwd})
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func commandKey(peer, id string) []byte { return []byte(peer + "\x00" + id) }

// Claim records that id arrived and says what to do, in one transaction.
func (l *Ledger) Claim(peer, id, digest string, now int64) (Claim, error) {
	var c Claim
	err := l.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		k := commandKey(peer, id)
		raw := b.Get(k)
		if raw == nil {
			rec, _ := json.Marshal(record{ArgvSHA256: digest, State: Received, ReceivedAt: now})
			c = Claim{Kind: Run}
			return b.Put(k, rec)
		}
		var r record
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("ledger: damaged record: %w", err)
		}
		switch {
		case r.ArgvSHA256 != digest:
			c = Claim{Kind: Conflict}
		case r.State == Finished:
			c = Claim{Kind: AlreadyFinished, Result: append(json.RawMessage{}, r.Result...)}
		case r.State == Started:
			c = Claim{Kind: Indeterminate, StartedAt: r.StartedAt}
		default:
			c = Claim{Kind: Run}
		}
		return nil
	})
	return c, err
}

func (l *Ledger) transition(peer, id string, from []State, f func(*record)) error {
	return l.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		k := commandKey(peer, id)
		var r record
		raw := b.Get(k)
		if raw == nil || json.Unmarshal(raw, &r) != nil {
			return fmt.Errorf("ledger: no record for this command")
		}
		ok := false
		for _, s := range from {
			ok = ok || r.State == s
		}
		if !ok {
			return fmt.Errorf("ledger: command is in state %s", r.State)
		}
		f(&r)
		out, _ := json.Marshal(r)
		return b.Put(k, out)
	})
}

// MarkStarted must return (committed and synced) before the process is spawned.
func (l *Ledger) MarkStarted(peer, id string, now int64) error {
	return l.transition(peer, id, []State{Received}, func(r *record) { r.State, r.StartedAt = Started, now })
}

// MarkFinished stores the final answer (a refusal is final too), returned to every later duplicate.
func (l *Ledger) MarkFinished(peer, id string, result json.RawMessage, now int64) error {
	return l.transition(peer, id, []State{Received, Started}, func(r *record) {
		r.State, r.FinishedAt, r.Result = Finished, now, result
	})
}

// StateOf returns a command's state, or "" if unknown.
func (l *Ledger) StateOf(peer, id string) State {
	var s State
	_ = l.db.View(func(tx *bolt.Tx) error {
		var r record
		if raw := tx.Bucket(bucketCommands).Get(commandKey(peer, id)); raw != nil && json.Unmarshal(raw, &r) == nil {
			s = r.State
		}
		return nil
	})
	return s
}

// CommandCounts counts commands by state.
func (l *Ledger) CommandCounts() map[string]int {
	out := map[string]int{"received": 0, "started": 0, "finished": 0}
	_ = l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var r record
			if json.Unmarshal(v, &r) == nil {
				out[string(r.State)]++
			}
			return nil
		})
	})
	return out
}

func getPeer(tx *bolt.Tx, peer string) peerRecord {
	var p peerRecord
	if raw := tx.Bucket(bucketPeers).Get([]byte(peer)); raw != nil {
		_ = json.Unmarshal(raw, &p)
	}
	if p.OutCounter == "" {
		p.OutCounter = "0"
	}
	return p
}

func putPeer(tx *bolt.Tx, peer string, p peerRecord) error {
	raw, _ := json.Marshal(p)
	return tx.Bucket(bucketPeers).Put([]byte(peer), raw)
}

// LoadWindow returns the incoming replay window for peer (a fresh one if none was stored).
func (l *Ledger) LoadWindow(peer string) (*replay.Window, error) {
	var w *replay.Window
	err := l.db.View(func(tx *bolt.Tx) error {
		p := getPeer(tx, peer)
		if len(p.Window) == 0 {
			w = replay.NewDefault()
			return nil
		}
		var err error
		w, err = replay.Parse(p.Window)
		return err
	})
	return w, err
}

// SaveWindow persists the window and bumps counters in the same synced transaction; callers do this after a
// successful open and before acting on the message.
func (l *Ledger) SaveWindow(peer string, w *replay.Window, bump ...string) error {
	state, err := w.MarshalJSON()
	if err != nil {
		return err
	}
	return l.update(func(tx *bolt.Tx) error {
		p := getPeer(tx, peer)
		p.Window = state
		if err := putPeer(tx, peer, p); err != nil {
			return err
		}
		return bumpTx(tx, bump...)
	})
}

// NextOutgoingCounter returns the next counter for peer (1, 2, ...), committed before it is returned.
// The counters named in bump are incremented in the same transaction (one commit for both).
func (l *Ledger) NextOutgoingCounter(peer string, bump ...string) (uint64, error) {
	var next uint64
	err := l.update(func(tx *bolt.Tx) error {
		var err error
		if next, err = nextCounterTx(tx, peer); err != nil {
			return err
		}
		return bumpTx(tx, bump...)
	})
	return next, err
}

// SaveWindowAndNextCounter is SaveWindow and NextOutgoingCounter in one synced transaction: for a message answered
// at once (a ping), one commit instead of two.
func (l *Ledger) SaveWindowAndNextCounter(peer string, w *replay.Window, bump ...string) (uint64, error) {
	state, err := w.MarshalJSON()
	if err != nil {
		return 0, err
	}
	var next uint64
	err = l.update(func(tx *bolt.Tx) error {
		p := getPeer(tx, peer)
		p.Window = state
		if err := putPeer(tx, peer, p); err != nil {
			return err
		}
		var err error
		if next, err = nextCounterTx(tx, peer); err != nil {
			return err
		}
		return bumpTx(tx, bump...)
	})
	return next, err
}

func nextCounterTx(tx *bolt.Tx, peer string) (uint64, error) {
	p := getPeer(tx, peer)
	cur, err := strconv.ParseUint(p.OutCounter, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ledger: damaged outgoing counter")
	}
	if cur == ^uint64(0) {
		return 0, fmt.Errorf("ledger: outgoing counter exhausted; re-enroll with new keys")
	}
	p.OutCounter = strconv.FormatUint(cur+1, 10)
	return cur + 1, putPeer(tx, peer, p)
}

// RaiseOutgoingCounter makes the next counter for peer at least floor+1 (never lowers it). Used once, when this
// ledger replaces a TypeScript agent's ledger.sqlite: the desktop's replay window still holds that agent's counters,
// and replies numbered from 1 again would all be rejected as replays.
func (l *Ledger) RaiseOutgoingCounter(peer string, floor uint64) error {
	return l.update(func(tx *bolt.Tx) error {
		p := getPeer(tx, peer)
		cur, err := strconv.ParseUint(p.OutCounter, 10, 64)
		if err != nil {
			return fmt.Errorf("ledger: damaged outgoing counter")
		}
		if cur >= floor {
			return nil
		}
		p.OutCounter = strconv.FormatUint(floor, 10)
		return putPeer(tx, peer, p)
	})
}

func bumpTx(tx *bolt.Tx, names ...string) error {
	b := tx.Bucket(bucketCounters)
	for _, n := range names {
		var v uint64
		if raw := b.Get([]byte(n)); len(raw) == 8 {
			v = binary.BigEndian.Uint64(raw)
		}
		if err := b.Put([]byte(n), binary.BigEndian.AppendUint64(nil, v+1)); err != nil {
			return err
		}
	}
	return nil
}

// Bump adds one to each named counter.
func (l *Ledger) Bump(names ...string) error {
	return l.update(func(tx *bolt.Tx) error { return bumpTx(tx, names...) })
}

// Counters returns every counter.
func (l *Ledger) Counters() map[string]uint64 {
	out := map[string]uint64{}
	_ = l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				out[string(k)] = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	})
	return out
}

// SortedKeys is a helper for stable output.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
