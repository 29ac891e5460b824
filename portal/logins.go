package portal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/portcullisdb/portcullis/audit"
	"github.com/portcullisdb/portcullis/directory"
	"github.com/portcullisdb/portcullis/store"
)

// endLogin ends one login of userID through the directory: its refresh
// tokens, its access tokens on the MySQL leg and its live sessions on
// every node. A user the directory no longer has still has the login's
// refresh tokens revoked.
func (s *Server) endLogin(ctx context.Context, userID, loginID, reason string) error {
	err := s.dir.EndLogin(ctx, directory.Actor{Kind: directory.ActorSelf}, userID, loginID, reason)
	if errors.Is(err, store.ErrNotFound) {
		_, err = s.dir.Store().RevokeRefreshFamily(ctx, loginID, time.Now())
	}
	return err
}

// adminEndLogins serves POST /v1/admin/logins/end ({"identity": ...}):
// every login of a person or workload identity ends, its tokens issued
// until now are refused and its sessions end on every node.
func (s *Server) adminEndLogins(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Identity string `json:"identity"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Identity == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", `the body must be JSON: {"identity": "a user name or a workload's user name"}`)
		return
	}
	name := body.Identity
	if err := s.dir.EndUserLogins(r.Context(), adminAPI, name, "revoked by an administrator"); err != nil {
		s.internal(w, err)
		return
	}
	s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "end the logins of " + name, ClientAddr: clientIP(r)})
	writeJSON(w, http.StatusOK, map[string]string{"status": "the tokens of " + name + " issued until now are refused; its sessions end within a second on every node"})
}

// disableConnection stores a disabled connection's setting and ends the
// logins and sessions of its users; enabling it again does not revive
// them.
func (s *Server) disableConnection(ctx context.Context, setting store.ConnectionSetting) error {
	n, err := s.dir.DisableConnection(ctx, directory.Actor{Kind: directory.ActorConsole, Name: setting.UpdatedBy}, setting)
	if err == nil && n > 0 {
		s.opt.Log.Info("ended the logins of a disabled connection's users", "connection", setting.Connection, "users", n, "by", setting.UpdatedBy)
	}
	return err
}

// consoleEndLogins ends every login of a user ("End logins" on the
// console's Users page): the tokens issued until now are refused and the
// user's sessions end on every node; the account stays enabled, so the
// person may log in again.
func (s *Server) consoleEndLogins(w http.ResponseWriter, r *http.Request, admin store.User) {
	u, err := s.dir.Store().GetUser(r.Context(), r.PathValue("id"))
	if err == nil {
		err = s.dir.EndUserLogins(r.Context(), consoleActor(admin), u.UserName, "ended by "+admin.UserName+" in the console")
	}
	if err != nil {
		s.opt.Log.Error("console: end logins", "admin", admin.UserName, "err", err)
		http.Redirect(w, r, "/console?done="+urlQuery("the change failed: "+err.Error()), http.StatusSeeOther)
		return
	}
	s.record(audit.Event{Event: "admin", Outcome: "granted", Reason: "console: end the logins of " + u.UserName + " by " + admin.UserName,
		ClientAddr: clientIP(r), User: admin.UserName, Subject: u.UserName})
	http.Redirect(w, r, "/console?done="+urlQuery("the logins of "+u.UserName+" are ended; its sessions end within a second on every node"), http.StatusSeeOther)
}
