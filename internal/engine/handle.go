package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/request"
)

// Handle runs the request's command and returns what to answer the runtime: the
// ADD result as JSON, nothing for the other commands. Both entry points, the thin
// plugin and the daemon, call it, so they cannot drift apart.
func (e *Engine) Handle(ctx context.Context, req *request.Request, conf *config.PluginConf) ([]byte, error) {
	switch req.Command {
	case request.Add:
		res, err := e.Add(ctx, req, conf)
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	case request.Del:
		return nil, e.Del(ctx, req, conf)
	case request.Check:
		return nil, e.Check(ctx, req, conf)
	case request.Status:
		return nil, e.Status(ctx, req, conf)
	case request.GC:
		return nil, e.GC(ctx, req, conf)
	}
	return nil, fmt.Errorf("unknown command %q", req.Command)
}
