package directory

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// killData is the data of a session.kill event: who asked and, when the
// cluster-wide registry knows the session, the node and process holding
// it, so that only that process acts on the event.
func killData(ctx context.Context, t *tx, a Actor, sessionID string) []byte {
	fields := map[string]any{"actor": a.Kind, "by": a.Name}
	if id, err := strconv.ParseInt(sessionID, 10, 64); err == nil {
		if list, err := t.ListProxySessions(ctx, time.Time{}); err == nil {
			for _, p := range list {
				if p.ID == id {
					fields["node"], fields["instance"] = p.Node, p.Instance
					break
				}
			}
		}
	}
	data, _ := json.Marshal(fields)
	return data
}
