// Package envelope implements the Orch sealed envelope, version 1 (protocol/ENVELOPE.md), and the primitives it
// is built from, composed only from the standard library and golang.org/x/crypto.
package envelope

import (
	"crypto/ed25519"
	"crypto/subtle"
	"errors"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
)

// ErrLowOrder is returned by X25519 when the result would be all zero (a low-order public key).
var ErrLowOrder = errors.New("x25519: low-order public key")

// X25519 computes the shared secret and refuses an all-zero result, as libsodium's crypto_scalarmult does.
func X25519(secret, public []byte) ([]byte, error) {
	if len(secret) != 32 || len(public) != 32 {
		return nil, errors.New("x25519: keys must be 32 bytes")
	}
	// curve25519.X25519 itself returns an error for an all-zero output.
	out, err := curve25519.X25519(secret, public)
	if err != nil {
		return nil, ErrLowOrder
	}
	return out, nil
}

// X25519Public derives the public key of an X25519 secret.
func X25519Public(secret []byte) ([]byte, error) {
	return curve25519.X25519(secret, curve25519.Basepoint)
}

// smallOrder lists the encodings of the Ed25519 points of small order that libsodium refuses (the last byte is
// compared without its sign bit), from libsodium's ge25519_has_small_order.
var smallOrder = [7][32]byte{
	{},
	{0x01},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	{0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	{0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
}

func hasSmallOrder(p []byte) bool {
	var q [32]byte
	copy(q[:], p)
	q[31] &= 0x7f
	for i := range smallOrder {
		if subtle.ConstantTimeCompare(q[:], smallOrder[i][:]) == 1 {
			return true
		}
	}
	return false
}

// isCanonicalPoint is libsodium's ge25519_is_canonical: the y coordinate is below 2^255-19.
func isCanonicalPoint(p []byte) bool {
	if p[31]&0x7f != 0x7f {
		return true
	}
	for i := 30; i > 0; i-- {
		if p[i] != 0xff {
			return true
		}
	}
	return p[0] < 0xed
}

// Verify is strict Ed25519 verification with libsodium's rules: canonical S (the standard library checks it),
// and neither the public key nor R of small order, and a canonical public key encoding. Never panics.
func Verify(publicKey, message, sig []byte) bool {
	if len(publicKey) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	if !isCanonicalPoint(publicKey) || hasSmallOrder(publicKey) || hasSmallOrder(sig[:32]) {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(publicKey), message, sig)
}

// KDF is keyed BLAKE2b with a 32-byte output (libsodium's crypto_generichash(out, msg, key)).
func KDF(key, message []byte) []byte {
	h, err := blake2b.New256(key)
	if err != nil {
		panic(err) // only for a key over 64 bytes, which callers never pass
	}
	h.Write(message)
	return h.Sum(nil)
}

// SealXChaCha encrypts with XChaCha20-Poly1305 (24-byte nonce); the result is ciphertext || tag.
func SealXChaCha(key, nonce, plaintext, ad []byte) ([]byte, error) {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != chacha20poly1305.NonceSizeX {
		return nil, errors.New("xchacha20poly1305: nonce must be 24 bytes")
	}
	return a.Seal(nil, nonce, plaintext, ad), nil
}

// OpenXChaCha decrypts ciphertext || tag; an error for a bad tag or bad lengths.
func OpenXChaCha(key, nonce, ct, ad []byte) ([]byte, error) {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != chacha20poly1305.NonceSizeX || len(ct) < chacha20poly1305.Overhead {
		return nil, errors.New("xchacha20poly1305: bad lengths")
	}
	return a.Open(nil, nonce, ct, ad)
}

// Zero overwrites b (best effort: Go may have copied it).
func Zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
