// netwire: an Ethernet cable between two TAP devices, in user space, with a settable one-way delay. The multi-host
// tests (test/support/netns.ts) use it instead of a veth pair when the kernel has no netem qdisc
// (CONFIG_NET_SCH_NETEM), so `setDelay` still delays a host's link with the real network stack on both ends.
//
//	netwire HOST_TAP SWITCH_TAP
//
// Creates both TAP devices in the network namespace it runs in (the caller then moves HOST_TAP into the host's
// namespace and attaches SWITCH_TAP to the bridge; an attached TAP keeps working when moved), prints "ready",
// and copies frames both ways. Commands on stdin, one per line:
//
//	delay MS    frames from HOST_TAP wait MS milliseconds before they go out on SWITCH_TAP (like `tc qdisc ...
//	            netem delay MS` on the host's interface); 0 for none
//
// It exits when stdin closes, so it never outlives the test process that started it. Standard library only.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const (
	tunSetIff = 0x400454ca
	iffTap    = 0x0002
	iffNoPi   = 0x1000
	// Frames waiting in one direction at most; past that they are dropped, as a full queue on a real link would.
	maxQueued = 8192
)

func openTap(name string) (*os.File, error) {
	if len(name) == 0 || len(name) > 15 {
		return nil, fmt.Errorf("tap name %q must be 1-15 characters", name)
	}
	fd, err := syscall.Open("/dev/net/tun", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	var ifr [40]byte
	copy(ifr[:16], name)
	*(*uint16)(unsafe.Pointer(&ifr[16])) = iffTap | iffNoPi
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), tunSetIff, uintptr(unsafe.Pointer(&ifr[0]))); errno != 0 {
		syscall.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, errno)
	}
	return os.NewFile(uintptr(fd), name), nil
}

type frame struct {
	due  time.Time
	data []byte
}

// pump copies frames from src to dst, each held until now + delay (read at the time the frame arrives).
func pump(src, dst *os.File, delayMs *atomic.Int64) {
	queue := make(chan frame, maxQueued)
	go func() {
		for f := range queue {
			if wait := time.Until(f.due); wait > 0 {
				time.Sleep(wait)
			}
			// A link that is down (EIO) or a full device queue drops the frame: TCP retransmits, as on a wire.
			_, _ = dst.Write(f.data)
		}
	}()
	buf := make([]byte, 65536)
	for {
		n, err := src.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		data := make([]byte, n)
		copy(data, buf[:n])
		select {
		case queue <- frame{due: time.Now().Add(time.Duration(delayMs.Load()) * time.Millisecond), data: data}:
		default:
		}
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: netwire HOST_TAP SWITCH_TAP")
		os.Exit(2)
	}
	host, err := openTap(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "netwire:", err)
		os.Exit(1)
	}
	sw, err := openTap(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "netwire:", err)
		os.Exit(1)
	}
	var hostToSwitch, switchToHost atomic.Int64
	go pump(host, sw, &hostToSwitch)
	go pump(sw, host, &switchToHost)
	fmt.Println("ready")
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) == 2 && fields[0] == "delay" {
			if ms, err := strconv.ParseInt(fields[1], 10, 64); err == nil && ms >= 0 && ms <= 60_000 {
				hostToSwitch.Store(ms)
				fmt.Println("ok")
				continue
			}
		}
		fmt.Println("error: expected: delay MS (0-60000)")
	}
	// stdin closed: the test process is gone or done with us.
}
