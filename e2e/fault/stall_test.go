//go:build e2e

package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/e2e/framework"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/wire/wiretest"
)

// stallNFSTimeout is the fault provisioner's --nfs-timeout; a Provision's NFS work is bounded by
// three of them.
const stallNFSTimeout = 2 * time.Second

// failureDeadline is how soon after a claim appears its first ProvisioningFailed Event must exist
// when its server does not answer: the call deadline plus Event delivery.
const failureDeadline = 3*stallNFSTimeout + 5*time.Second

// TestFaultServerStalledOrUnreachable shows that a server that does not answer costs a claim only
// its deadline, and does not hold up claims on other servers:
//   - refused: a class on 127.0.0.2, where nothing serves NFS yet (the portmapper answers, the
//     MOUNT port refuses), then an NFS server appears there and the claims bind;
//   - blackholed: a class on an address whose packets are dropped (a veth into a network
//     namespace of this test, with a static neighbour entry no interface answers to), while a
//     burst on the test bed's Ganesha binds;
//   - stalled: Ganesha SIGSTOPped for longer than the call timeout while a burst on it and one
//     on the 127.0.0.2 server arrive; the latter binds during the stall, the former after SIGCONT.
//
// The provisioner is the same process from start to end.
func TestFaultServerStalledOrUnreachable(t *testing.T) {
	guardOtherE2E(t)
	n := faultClaimCount(t)
	r := newFaultRun(t, "stall", n)
	restoreNFSOnCleanup(t)
	g := testbedGanesha(t)
	ctx := framework.Context(t)
	nfsPort, mountPort := ganeshaPorts(t)
	blackhole := newBlackhole(t)

	p := r.Start(t, true, "--nfs-timeout="+stallNFSTimeout.String())
	pid := p.Cmd.Process.Pid
	const otherServer = "127.0.0.2"
	// The server that appears there is the in-process NFSv3 one (wiretest): the class says so,
	// whatever version the suite's other classes use.
	otherClass := r.CreateClass(t, map[string]string{"server": otherServer, "share": "/", "nfsVersion": "3"})
	blackholeClass := r.CreateClass(t, map[string]string{"server": blackhole.address})
	otherDir := t.TempDir()
	other := framework.Export{NFSPath: "/", LocalDir: otherDir}
	small := min(5, n)
	outer := t

	// Claim numbers: 0.. on Ganesha (first burst), 1000.. on the other server (refused phase),
	// 2000.. blackholed, 3000.. on Ganesha during the stall, 4000.. on the other server during it.
	refused := faultFigures{name: "server refusing connections, then an NFS server appears", claims: small}
	t.Run("refused", func(t *testing.T) {
		created := r.createClaimsPaced(t, otherClass.Name, 1000, small, 0)
		if err := created(); err != nil {
			t.Fatal(err)
		}
		elapsed := r.firstFailure(t, claimName(1000), otherServer, "refused")
		refused.note("first failure %s after the claim", elapsed.Round(10*time.Millisecond))
		// Serving until the whole case ends (outer), not just this phase.
		server := wiretest.Start(outer, otherDir)
		startProxy(outer, net.JoinHostPort(otherServer, strconv.Itoa(nfsPort)), server.Addr())
		startProxy(outer, net.JoinHostPort(otherServer, strconv.Itoa(mountPort)), server.Addr())
		refused.recovery = r.waitAllBound(t, otherClass.Name, small, faultSettleTimeout)
		r.finish(t, &refused, p, pid, provisioned{otherClass.Name, other})
	})
	if t.Failed() {
		return
	}

	blackholed := faultFigures{name: "blackholed server while a burst binds on another", claims: n}
	t.Run("blackholed", func(t *testing.T) {
		stuck := r.createClaimsPaced(t, blackholeClass.Name, 2000, small, 0)
		if err := stuck(); err != nil {
			t.Fatal(err)
		}
		created := r.createClaimsPaced(t, r.Class.Name, 0, n, 4*time.Second)
		elapsed := r.firstFailure(t, claimName(2000), blackhole.address, "")
		blackholed.note("first failure on the blackholed server %s after the claim", elapsed.Round(10*time.Millisecond))
		if err := created(); err != nil {
			t.Fatal(err)
		}
		took := r.waitAllBound(t, r.Class.Name, n, faultSettleTimeout)
		blackholed.note("%d claims on Ganesha Bound %s after the burst was created", n, took.Round(10*time.Millisecond))
		claims, err := r.listClaims(ctx, blackholeClass.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, claim := range claims {
			if claim.Status.Phase != corev1.ClaimPending {
				t.Errorf("claim %s on the blackholed server is %s", claim.Name, claim.Status.Phase)
			}
		}
		r.finish(t, &blackholed, p, pid, provisioned{r.Class.Name, fw.DefaultExport()})
	})
	if t.Failed() {
		return
	}

	stalled := faultFigures{name: "NFS server SIGSTOPped past the call timeout, then SIGCONT", claims: 3*n + small}
	t.Run("stalled", func(t *testing.T) {
		g.signal(t, syscall.SIGSTOP)
		stoppedAt := time.Now()
		resumed := false
		resume := func() {
			if !resumed {
				g.signal(t, syscall.SIGCONT)
				resumed = true
			}
		}
		t.Cleanup(resume)
		onGanesha := r.createClaimsPaced(t, r.Class.Name, 3000, n, 4*time.Second)
		onOther := r.createClaimsPaced(t, otherClass.Name, 4000, n, 4*time.Second)
		elapsed := r.firstFailure(t, claimName(3000), fw.Env.NFSServer, "")
		stalled.note("first failure on the stalled server %s after the claim", elapsed.Round(10*time.Millisecond))
		if err := onOther(); err != nil {
			t.Fatal(err)
		}
		r.waitAllBound(t, otherClass.Name, small+n, faultSettleTimeout)
		stalled.note("%d claims on the other server Bound %s into the stall", n, time.Since(stoppedAt).Round(10*time.Millisecond))
		// Still stalled: nothing on Ganesha can have been provisioned meanwhile.
		claims, err := r.listClaims(ctx, r.Class.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, claim := range claims {
			if claim.Status.Phase == corev1.ClaimBound && claim.Name >= claimName(3000) {
				t.Errorf("claim %s on the stopped server is Bound; the stall did not hold", claim.Name)
			}
		}
		if stall := time.Since(stoppedAt); stall < 2*stallNFSTimeout {
			t.Fatalf("the stall lasted only %s; want longer than the call timeout %s", stall, stallNFSTimeout)
		}
		stalled.note("stalled %s", time.Since(stoppedAt).Round(100*time.Millisecond))
		resume()
		resumedAt := time.Now()
		if err := onGanesha(); err != nil {
			t.Fatal(err)
		}
		r.waitAllBound(t, r.Class.Name, 2*n, faultSettleTimeout)
		stalled.recovery = time.Since(resumedAt)
		r.finish(t, &stalled, p, pid, provisioned{r.Class.Name, fw.DefaultExport()}, provisioned{otherClass.Name, other})
	})
	if t.Failed() {
		return
	}

	t.Run("deletion", func(t *testing.T) {
		d := faultFigures{name: "deletion after the stall", claims: 3*n + 2*small}
		var names []string
		for _, first := range []struct{ first, count int }{{0, n}, {1000, small}, {2000, small}, {3000, n}, {4000, n}} {
			names = append(names, claimNames(first.first, first.count)...)
		}
		if err := r.deleteClaimsPaced(t, names, time.Second)(); err != nil {
			t.Fatal(err)
		}
		d.recovery = r.waitAllVolumesGone(t, faultSettleTimeout)
		r.checkDeleted(t, &d, fw.DefaultExport())
		onGanesha := d.archived
		r.checkDeleted(t, &d, other)
		if onGanesha != 2*n || d.archived != small+n {
			t.Errorf("archived %d directories on Ganesha and %d on the other server, want %d and %d", onGanesha, d.archived, 2*n, small+n)
		}
		d.archived += onGanesha
		d.panics = r.CountPanics(t)
		assertRunning(t, &d, p, pid)
		d.report(t)
	})
}

// provisioned is a class whose claims a phase provisioned, and the export they are on.
type provisioned struct {
	class  string
	export framework.Export
}

// finish checks what a phase of the case provisioned, counts panics and that the provisioner
// rode it out, and reports the figures.
func (r *faultRun) finish(t *testing.T, f *faultFigures, p *framework.Process, pid int, phases ...provisioned) {
	t.Helper()
	for _, ph := range phases {
		r.checkProvisioned(t, f, ph.class, ph.export)
	}
	f.panics = r.CountPanics(t)
	assertRunning(t, f, p, pid)
	f.report(t)
}

// firstFailure waits for the first ProvisioningFailed Warning on the claim, checks that it came
// within failureDeadline of the claim's creation and mentions the server (and fragment), and
// returns how long after the creation it came.
func (r *faultRun) firstFailure(t *testing.T, name, server, fragment string) time.Duration {
	t.Helper()
	claims := fw.Cluster.Clientset.CoreV1().PersistentVolumeClaims(r.Namespace)
	var claim *corev1.PersistentVolumeClaim
	framework.Poll(t, "claim "+name, time.Minute, func(ctx context.Context) (bool, error) {
		var err error
		claim, err = claims.Get(ctx, name, metav1.GetOptions{})
		return err == nil, err
	})
	fragments := []string{server}
	if fragment != "" {
		fragments = append(fragments, fragment)
	}
	event := fw.WaitWarningEvent(t, claim, framework.FailureReason, fragments...)
	first := event.FirstTimestamp.Time
	if first.IsZero() {
		first = event.EventTime.Time
	}
	// Timestamps have second precision: allow one more second.
	elapsed := first.Sub(claim.CreationTimestamp.Time)
	if elapsed > failureDeadline+time.Second {
		t.Errorf("first ProvisioningFailed on %s came %s after the claim; want within %s: %s", name, elapsed, failureDeadline, event.Message)
	}
	t.Logf("first failure on %s after %s: %s", name, elapsed, event.Message)
	return elapsed
}

// ganeshaPorts asks the test bed's portmapper for Ganesha's NFS and MOUNT ports (TCP, v3), which
// the same portmapper also gives for 127.0.0.2.
func ganeshaPorts(t *testing.T) (nfsPort, mountPort int) {
	t.Helper()
	output, err := exec.Command("rpcinfo", "-p", "127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("rpcinfo -p 127.0.0.1: %v\n%s", err, output)
	}
	for _, line := range strings.Split(string(output), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 || fields[1] != "3" || fields[2] != "tcp" {
			continue
		}
		port, err := strconv.Atoi(fields[3])
		if err != nil {
			continue
		}
		switch fields[0] {
		case "100003":
			nfsPort = port
		case "100005":
			mountPort = port
		}
	}
	if nfsPort == 0 || mountPort == 0 {
		t.Fatalf("no NFS v3 and MOUNT v3 TCP ports in the portmapper:\n%s", output)
	}
	return nfsPort, mountPort
}

// startProxy forwards TCP connections from listen to target until the test ends.
func startProxy(t *testing.T, listen, target string) {
	t.Helper()
	listener, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("proxy listening on %s: %v", listen, err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			client, err := listener.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			go func() { _, _ = io.Copy(server, client); server.Close() }()
			go func() { _, _ = io.Copy(client, server); client.Close() }()
		}
	}()
	t.Cleanup(func() {
		listener.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, conn := range conns {
			conn.Close()
		}
	})
}

// blackhole is an address whose packets go nowhere: a veth pair into a network namespace this
// test creates, with a permanent neighbour entry for the address pointing at a MAC address no
// interface has, so SYNs leave and nothing ever answers.
type blackhole struct {
	address string
}

func newBlackhole(t *testing.T) blackhole {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) is needed for the blackholed address")
	}
	id := strconv.Itoa(int(rand.Uint32N(200)) + 20)
	namespace := "nfspf-" + strconv.Itoa(os.Getpid()) + "-" + id
	host, peer := "nfspfh"+id, "nfspfn"+id
	subnet := "10.254." + id
	run := func(args ...string) error {
		output, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, output)
		}
		return nil
	}
	t.Cleanup(func() {
		_ = run("link", "del", host)
		_ = run("netns", "del", namespace)
	})
	for _, args := range [][]string{
		{"netns", "add", namespace},
		{"link", "add", host, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", namespace},
		{"addr", "add", subnet + ".1/24", "dev", host},
		{"link", "set", host, "up"},
		{"-n", namespace, "link", "set", peer, "up"},
		{"neigh", "replace", subnet + ".2", "lladdr", "02:00:5e:00:53:01", "dev", host, "nud", "permanent"},
	} {
		if err := run(args...); err != nil {
			t.Fatalf("setting up the blackholed address: %v", err)
		}
	}
	address := subnet + ".2"
	// It must really be a blackhole: a connection attempt neither succeeds nor is refused.
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(address, "111"), 500*time.Millisecond)
	if err == nil {
		conn.Close()
		t.Fatalf("%s answered; want a blackhole", address)
	}
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("connecting to %s: %v; want a timeout (a blackhole)", address, err)
	}
	return blackhole{address: address}
}
