// Command pause is the test bed's pod sandbox process, the role of Kubernetes' pause
// image: it holds the pod's namespaces open, reaps every child that is reparented to
// it (it is the pod's PID 1 when the pod shares its process namespace), and exits
// cleanly on SIGTERM or SIGINT. tools/nodeimages packs it, built statically.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	listen().wait(nil)
	os.Exit(0)
}

type signals struct{ stop, child chan os.Signal }

func listen() signals {
	s := signals{stop: make(chan os.Signal, 1), child: make(chan os.Signal, 1)}
	signal.Notify(s.stop, syscall.SIGTERM, syscall.SIGINT)
	signal.Notify(s.child, syscall.SIGCHLD)
	return s
}

// wait reaps children until SIGTERM or SIGINT arrives; reaped, if not nil, is told
// each child's PID.
func (s signals) wait(reaped func(pid int)) {
	for {
		select {
		case <-s.stop:
			return
		case <-s.child:
			reap(reaped)
		}
	}
}

// reap collects every exited child. Signals coalesce, so one SIGCHLD may stand for
// several children: wait until none is left.
func reap(reaped func(pid int)) {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if reaped != nil {
			reaped(pid)
		}
	}
}
