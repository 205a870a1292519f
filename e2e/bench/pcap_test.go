//go:build e2e

package bench

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server-side count of NFS calls, independent of the provisioner's own metric: tcpdump captures
// loopback traffic to the NFS and MOUNT ports, and this file reassembles the client→server TCP
// streams of the provisioner under test (its sockets, found in /proc/<pid>/fd and /proc/net/tcp)
// and counts the ONC RPC CALL records in them by program and procedure. Without tcpdump the
// benchmark says so and reports the client-side count only.

// Test bed ports (e2e/testbed/up.sh NFS_PORT, MOUNT_PORT).
const benchNFSPort, benchMountPort = 2049, 20048

type pcapCounts struct {
	provision, delete map[string]float64
	note              string
}

type pcapCapture struct {
	cmd     *exec.Cmd
	path    string
	note    string
	stopped chan struct{}

	mu    sync.Mutex
	ports map[uint16]bool // local ports of the provisioner's NFS/MOUNT connections
	done  chan struct{}
	pid   int
}

// startPcap starts tcpdump on lo; a nil-safe capture that only carries a note when it cannot.
func startPcap(t *testing.T, dir, name string, pid int) *pcapCapture {
	t.Helper()
	c := &pcapCapture{ports: map[uint16]bool{}, done: make(chan struct{})}
	bin, err := exec.LookPath("tcpdump")
	if err != nil {
		c.note = " (tcpdump not installed: apt-get install tcpdump for the server-side count)"
		return c
	}
	c.path = filepath.Join(dir, strings.NewReplacer("=", "", " ", "-", "/", "-").Replace(name)+".pcap")
	// -U: write each packet at once; -s 0: whole packets (several RPC records may share one).
	c.cmd = exec.Command(bin, "-i", "lo", "--immediate-mode", "-U", "-s", "0", "-n", "-w", c.path,
		fmt.Sprintf("tcp dst port %d or tcp dst port %d", benchNFSPort, benchMountPort))
	stderr, _ := c.cmd.StderrPipe()
	if err := c.cmd.Start(); err != nil {
		c.note = fmt.Sprintf(" (tcpdump did not start: %v)", err)
		c.cmd = nil
		return c
	}
	c.stopped = make(chan struct{})
	started := make(chan struct{})
	go func() {
		// tcpdump says "listening on lo" once the capture runs.
		scanner := bufio.NewScanner(stderr)
		once := sync.Once{}
		for scanner.Scan() {
			if strings.Contains(scanner.Text(), "listening on") {
				once.Do(func() { close(started) })
			}
		}
		once.Do(func() { close(started) })
	}()
	go func() { _ = c.cmd.Wait(); close(c.stopped) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		c.note = " (tcpdump did not report listening within 10 s)"
	}
	t.Cleanup(func() { c.stop(); os.Remove(c.path) })
	c.watchPorts(pid)
	return c
}

// watchPorts samples the provisioner's NFS connections every 200 ms until finish, so connections
// opened and closed during the run are attributed too.
func (c *pcapCapture) watchPorts(pid int) {
	if c.cmd == nil {
		return
	}
	c.pid = pid
	c.samplePorts()
	go func() {
		ticker := time.NewTicker(200 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-ticker.C:
				c.samplePorts()
			}
		}
	}()
}

func (c *pcapCapture) samplePorts() {
	ports, err := nfsClientPorts(c.pid)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, port := range ports {
		c.ports[port] = true
	}
}

// checkpoint marks the end of a phase (packets are split by their capture timestamps).
func (c *pcapCapture) checkpoint() time.Time {
	c.samplePorts()
	return time.Now()
}

func (c *pcapCapture) stop() {
	if c.cmd == nil {
		return
	}
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.stopped:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.stopped
	}
}

// drain waits (up to 5 s) until the capture file has stopped growing for half a second: tcpdump
// drops what it has not yet read from the kernel when it is stopped.
func (c *pcapCapture) drain() {
	deadline := time.Now().Add(5 * time.Second)
	var lastSize int64 = -1
	stableSince := time.Now()
	for time.Now().Before(deadline) {
		info, err := os.Stat(c.path)
		if err != nil {
			return
		}
		if info.Size() != lastSize {
			lastSize, stableSince = info.Size(), time.Now()
		} else if time.Since(stableSince) >= 500*time.Millisecond {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// finish stops the capture and counts the calls of each phase.
func (c *pcapCapture) finish(t *testing.T, provisionEnd, deleteEnd time.Time) *pcapCounts {
	t.Helper()
	if c.cmd == nil {
		return &pcapCounts{note: c.note}
	}
	c.samplePorts()
	c.drain()
	c.stop()
	c.mu.Lock()
	ports := make(map[uint16]bool, len(c.ports))
	for p := range c.ports {
		ports[p] = true
	}
	c.mu.Unlock()
	calls, err := readRPCCalls(c.path)
	if err != nil {
		return &pcapCounts{note: fmt.Sprintf(" (reading the capture: %v)", err)}
	}
	out := &pcapCounts{provision: map[string]float64{}, delete: map[string]float64{}, note: c.note}
	other := 0
	for _, call := range calls {
		if !ports[call.srcPort] {
			other++
			continue
		}
		switch {
		case !call.at.After(provisionEnd):
			out.provision[call.name()]++
		case !call.at.After(deleteEnd):
			out.delete[call.name()]++
		}
	}
	out.note += fmt.Sprintf(" [%d connection(s) of the provisioner; %d calls of other clients ignored]", len(ports), other)
	return out
}

type rpcCall struct {
	at               time.Time
	srcPort          uint16
	prog, vers, proc uint32
	xid              uint32
}

var nfs3Procs = []string{"NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE", "CREATE",
	"MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK", "READDIR", "READDIRPLUS", "FSSTAT", "FSINFO",
	"PATHCONF", "COMMIT"}

func (c rpcCall) name() string {
	switch {
	case c.prog == 100003 && int(c.proc) < len(nfs3Procs):
		return nfs3Procs[c.proc]
	case c.prog == 100005 && c.proc == 1:
		return "MNT"
	case c.prog == 100005 && c.proc == 0:
		return "MOUNT NULL"
	}
	return fmt.Sprintf("prog %d proc %d", c.prog, c.proc)
}

// readRPCCalls parses a pcap file (Ethernet or Linux cooked link types, IPv4, TCP) and returns the
// RPC calls in every client→server stream, reassembled in sequence order.
func readRPCCalls(path string) ([]rpcCall, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	header := make([]byte, 24)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	// The magic number says the byte order, and microsecond or nanosecond timestamps.
	var order binary.ByteOrder
	nano := false
	for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		switch o.Uint32(header) {
		case 0xa1b2c3d4:
			order = o
		case 0xa1b23c4d:
			order, nano = o, true
		}
		if order != nil {
			break
		}
	}
	if order == nil {
		return nil, errors.New("not a pcap file")
	}
	linkType := order.Uint32(header[20:])
	var linkLen int
	switch linkType {
	case 1: // Ethernet (Linux lo)
		linkLen = 14
	case 113: // Linux cooked
		linkLen = 16
	case 276: // Linux cooked v2
		linkLen = 20
	default:
		return nil, fmt.Errorf("pcap link type %d not handled", linkType)
	}
	type stream struct {
		next    uint32
		started bool
		buf     []byte
	}
	streams := map[[2]uint16]*stream{}
	var calls []rpcCall
	record := make([]byte, 16)
	for {
		if _, err := io.ReadFull(r, record); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return nil, err
		}
		sec, frac, capLen := order.Uint32(record), order.Uint32(record[4:]), order.Uint32(record[8:])
		packet := make([]byte, capLen)
		if _, err := io.ReadFull(r, packet); err != nil {
			break // a capture cut short by SIGTERM
		}
		at := time.Unix(int64(sec), int64(frac)*1000)
		if nano {
			at = time.Unix(int64(sec), int64(frac))
		}
		if len(packet) < linkLen+20 {
			continue
		}
		ip := packet[linkLen:]
		if ip[0]>>4 != 4 || ip[9] != 6 {
			continue
		}
		ipHeader := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if total > len(ip) || ipHeader+20 > total {
			continue
		}
		tcp := ip[ipHeader:total]
		srcPort, dstPort := binary.BigEndian.Uint16(tcp), binary.BigEndian.Uint16(tcp[2:])
		seq := binary.BigEndian.Uint32(tcp[4:])
		flags := tcp[13]
		dataOffset := int(tcp[12]>>4) * 4
		if dataOffset > len(tcp) {
			continue
		}
		payload := tcp[dataOffset:]
		key := [2]uint16{srcPort, dstPort}
		s := streams[key]
		if s == nil || flags&0x02 != 0 { // new stream, or SYN: a new connection on the same ports
			s = &stream{}
			streams[key] = s
		}
		if flags&0x02 != 0 {
			s.next, s.started = seq+1, true
			continue
		}
		if len(payload) == 0 {
			continue
		}
		diff := int32(seq - s.next)
		if !s.started || diff > 0 {
			// Joined mid-stream (the connection predates the capture) or a gap in the capture:
			// resynchronise on a segment that starts with a whole CALL record, as a client's
			// small calls written one at a time do.
			if !startsWithCall(payload) {
				s.started, s.buf = false, nil
				continue
			}
			s.started, s.next, s.buf, diff = true, seq, nil, 0
		}
		switch {
		case diff < 0: // retransmission overlapping data already seen
			if int(-diff) >= len(payload) {
				continue
			}
			payload = payload[-diff:]
		}
		s.next += uint32(len(payload))
		s.buf = append(s.buf, payload...)
		for len(s.buf) >= 4 {
			length := int(binary.BigEndian.Uint32(s.buf) & 0x7fffffff)
			if len(s.buf) < 4+length {
				break
			}
			body := s.buf[4 : 4+length]
			if len(body) >= 24 && binary.BigEndian.Uint32(body[4:]) == 0 { // msg_type CALL
				calls = append(calls, rpcCall{
					at: at, srcPort: srcPort, xid: binary.BigEndian.Uint32(body),
					prog: binary.BigEndian.Uint32(body[12:]), vers: binary.BigEndian.Uint32(body[16:]), proc: binary.BigEndian.Uint32(body[20:]),
				})
			}
			s.buf = s.buf[4+length:]
		}
		if len(s.buf) == 0 {
			s.buf = nil
		}
	}
	return calls, nil
}

// startsWithCall: a record mark with the last-fragment bit and a sane length, then an RPC CALL of
// version 2.
func startsWithCall(b []byte) bool {
	if len(b) < 4+24 {
		return false
	}
	mark := binary.BigEndian.Uint32(b)
	return mark&0x80000000 != 0 && mark&0x7fffffff <= 1<<20 &&
		binary.BigEndian.Uint32(b[8:]) == 0 && binary.BigEndian.Uint32(b[12:]) == 2
}

// nfsClientPorts are the local ports of pid's TCP connections to the NFS or MOUNT port.
func nfsClientPorts(pid int) ([]uint16, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	table, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return nil, err
	}
	defer table.Close()
	var ports []uint16
	scanner := bufio.NewScanner(table)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 10 || !inodes[fields[9]] {
			continue
		}
		_, local, ok1 := strings.Cut(fields[1], ":")
		_, remote, ok2 := strings.Cut(fields[2], ":")
		if !ok1 || !ok2 {
			continue
		}
		lp, err1 := strconv.ParseUint(local, 16, 16)
		rp, err2 := strconv.ParseUint(remote, 16, 16)
		if err1 != nil || err2 != nil {
			continue
		}
		if rp == benchNFSPort || rp == benchMountPort {
			ports = append(ports, uint16(lp))
		}
	}
	return ports, scanner.Err()
}
