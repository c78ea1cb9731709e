// Command polynode runs the test bed's one-node Kubernetes cluster (kubelet,
// containerd, runc and a control plane) in network and mount namespaces of
// its own, for `make demo` and for exploring by hand:
//
//	polynode up -dir DIR [-image ARCHIVE]...   start it; print the KUBECONFIG to use
//	polynode down -dir DIR                     stop it and undo what it changed
//	polynode exec -dir DIR -- CMD [ARG]...     run a command inside the node's namespaces
//	polynode json < FILE                       pretty-print a JSON document
//
// The node's processes live in a supervisor started by `up`, which holds the
// namespaces; the host's network namespace, /run, /var/lib/cni, /etc/cni and
// /opt/cni/bin are never touched (the node mounts private copies). The API
// server is reached from the host through a loopback port that the supervisor
// forwards into the node.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/polynet-cni/polynet/test/testbed"
)

const (
	pidFile        = "supervisor.pid"
	readyFile      = "ready"
	failedFile     = "failed"
	hostKubeconfig = "kubeconfig"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "up":
		err = up(os.Args[2:])
	case "down":
		err = down(os.Args[2:])
	case "exec":
		err = execIn(os.Args[2:])
	case "supervise":
		err = supervise(os.Args[2:])
	case "json":
		err = indentJSON(os.Stdin, os.Stdout)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "polynode: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: polynode up|down|exec -dir DIR [...]")
	os.Exit(2)
}

type images []string

func (i *images) String() string     { return strings.Join(*i, ",") }
func (i *images) Set(v string) error { *i = append(*i, v); return nil }

func flags(name string, args []string) (dir string, imgs images, rest []string) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	fs.StringVar(&dir, "dir", "", "the node's folder")
	fs.Var(&imgs, "image", "an image archive to import (repeatable)")
	_ = fs.Parse(args)
	if dir == "" {
		fmt.Fprintln(os.Stderr, "polynode: -dir is required")
		os.Exit(2)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return abs, imgs, fs.Args()
}

// up starts the supervisor in new namespaces, detached, and waits until it
// says the node registered or it failed.
func up(args []string) error {
	dir, imgs, _ := flags("up", args)
	if pid, err := readPID(dir); err == nil && alive(pid) {
		return fmt.Errorf("a node already runs from %s (supervisor %d): polynode down -dir %s", dir, pid, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{readyFile, failedFile} {
		os.Remove(filepath.Join(dir, f))
	}
	// The host end of the API server's forward: a loopback listener made
	// here, in the host's network namespace, and handed to the supervisor.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	l.Close()
	log, err := os.OpenFile(filepath.Join(dir, "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	sargs := []string{"supervise", "-dir", dir}
	for _, i := range imgs {
		abs, err := filepath.Abs(i)
		if err != nil {
			return err
		}
		sargs = append(sargs, "-image", abs)
	}
	cmd := exec.Command("/proc/self/exe", sargs...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = []*os.File{lf}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the node's supervisor: %w", err)
	}
	lf.Close()
	if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, readyFile)); err == nil {
			fmt.Println(filepath.Join(dir, hostKubeconfig))
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the node's supervisor ended (%v):\n%s", err, tail(filepath.Join(dir, "supervisor.log"), 30))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the node did not come up within 5 minutes:\n%s", tail(filepath.Join(dir, "supervisor.log"), 30))
		}
	}
}

// supervise runs inside the new namespaces: it starts the cluster, forwards
// the host's loopback port to the API server, and stops everything on SIGTERM.
func supervise(args []string) error {
	dir, imgs, _ := flags("supervise", args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := testbed.LoopbackUp(); err != nil {
		return err
	}
	bed, err := testbed.Load()
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	node, err := testbed.LaunchKubeNode(lctx, bed, filepath.Join(dir, "node"), imgs...)
	if err != nil {
		os.WriteFile(filepath.Join(dir, failedFile), []byte(err.Error()), 0o644)
		return err
	}
	defer node.Stop()
	l, err := net.FileListener(os.NewFile(3, "api-forward"))
	if err != nil {
		return err
	}
	defer l.Close()
	api := strings.TrimPrefix(node.CP.URL, "https://")
	go forward(l, api)
	cfg := node.AdminConfig()
	cfg.Host = "https://" + l.Addr().String()
	if err := testbed.WriteKubeconfig(filepath.Join(dir, hostKubeconfig), cfg); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, readyFile), nil, 0o644); err != nil {
		return err
	}
	fmt.Println("node registered; serving until SIGTERM")
	<-ctx.Done()
	fmt.Println("stopping the node")
	return nil
}

// forward copies each connection accepted on l to addr, both ways.
func forward(l net.Listener, addr string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(u, c); done <- struct{}{} }()
			go func() { io.Copy(c, u); done <- struct{}{} }()
			<-done
		}()
	}
}

// down asks the supervisor to stop and waits until it has.
func down(args []string) error {
	dir, _, _ := flags("down", args)
	pid, err := readPID(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !alive(pid) {
		os.Remove(filepath.Join(dir, pidFile))
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	for deadline := time.Now().Add(3 * time.Minute); alive(pid); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("the supervisor %d did not stop within 3 minutes; killed it:\n%s", pid, tail(filepath.Join(dir, "supervisor.log"), 30))
		}
	}
	os.Remove(filepath.Join(dir, pidFile))
	return nil
}

// execIn runs a command in the supervisor's namespaces.
func execIn(args []string) error {
	dir, _, rest := flags("exec", args)
	pid, err := readPID(dir)
	if err != nil || !alive(pid) {
		return fmt.Errorf("no node runs from %s", dir)
	}
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(pid), "-n", "-m", "--"}, rest...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd.Run()
}

// indentJSON pretty-prints the JSON document on r (the demo shows the
// network-status annotation with it, on machines without jq or python).
func indentJSON(r io.Reader, w io.Writer) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(data), "", "  "); err != nil {
		return fmt.Errorf("not JSON: %w: %q", err, data)
	}
	out.WriteByte('\n')
	_, err = out.WriteTo(w)
	return err
}

func readPID(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(st), ") Z ")
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
