//go:build race

package policy

// The race detector slows the destructive-pattern scan about 25x; time bounds allow for it.
const raceEnabled = true
