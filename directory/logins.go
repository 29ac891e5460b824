package directory

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/portcullisdb/portcullis/store"
)

// Login ends: every one commits, in one transaction, the revocation of
// the refresh tokens, the record that refuses the access tokens already
// handed out (store.LoginEnd, checked on the MySQL leg) and the
// login.ended event on which every proxy node ends the sessions opened
// with them.

// endLogin is the body of every login end, inside t.
func (t *tx) endLogin(ctx context.Context, userName, userID, loginID, reason string) error {
	now := time.Now()
	switch {
	case loginID != "":
		if _, err := t.RevokeRefreshFamily(ctx, loginID, now); err != nil {
			return fmt.Errorf("revoke login %s: %w", loginID, err)
		}
	case userID != "":
		if _, err := t.RevokeUserRefreshTokens(ctx, userID, now); err != nil {
			return fmt.Errorf("revoke the logins of %q: %w", userName, err)
		}
	}
	if _, err := t.PutLoginEnd(ctx, store.LoginEnd{LoginID: loginID, UserName: userName, Reason: reason}); err != nil {
		return err
	}
	fields := map[string]string{"login_id": loginID, "user_id": userID, "actor": t.actor.Kind, "by": t.actor.Name, "reason": reason}
	data, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	if _, err := t.AppendEvent(ctx, store.Event{Kind: store.EventLoginEnded, Subject: userName, Data: data}); err != nil {
		return fmt.Errorf("append %s event for %q: %w", store.EventLoginEnded, userName, err)
	}
	t.changes = append(t.changes, Change{Kind: store.EventLoginEnded, UserName: userName, UserID: userID, Reason: reason})
	return nil
}

// EndLogin ends one login (a refresh family): a logout, a refresh token
// or one-time code used twice. The user may sign themselves out; the
// portal's token endpoint acts as ActorSelf for reuse detection.
func (d *Directory) EndLogin(ctx context.Context, a Actor, userID, loginID, reason string) error {
	if loginID == "" {
		return refuse(ErrInvalid, "no login to end")
	}
	_, err := d.update(ctx, a, func(t *tx) error {
		name := ""
		if u, err := t.GetUser(ctx, userID); err == nil {
			name = u.UserName
		} else {
			return fmt.Errorf("end login %s: %w", loginID, err)
		}
		return t.endLogin(ctx, name, userID, loginID, reason)
	})
	return err
}

// EndUserLogins ends every login of userName (a person the directory
// knows, or a workload identity that has no user): tokens issued until
// now are refused and its sessions end. Only an administrator does.
func (d *Directory) EndUserLogins(ctx context.Context, a Actor, userName, reason string) error {
	if !a.grantsAdmin() {
		return refuse(ErrForbidden, "%s may not end another person's logins", a)
	}
	if userName == "" {
		return refuse(ErrInvalid, "no user name given")
	}
	_, err := d.update(ctx, a, func(t *tx) error {
		id := ""
		if u, err := t.GetUserByName(ctx, userName); err == nil {
			id, userName = u.ID, u.UserName
		}
		return t.endLogin(ctx, userName, id, "", reason)
	})
	return err
}

// DisableConnection stores setting (a connection turned off) and ends the
// logins of every user of that SSO (or SCIM) connection, in one
// transaction; enabling it again does not revive them. It returns how
// many users it ended.
func (d *Directory) DisableConnection(ctx context.Context, a Actor, setting store.ConnectionSetting) (int, error) {
	if !a.grantsAdmin() {
		return 0, refuse(ErrForbidden, "%s may not disable a connection", a)
	}
	connection := setting.Connection
	n := 0
	_, err := d.update(ctx, a, func(t *tx) error {
		if _, err := t.PutConnectionSetting(ctx, setting); err != nil {
			return err
		}
		for offset := 0; ; {
			users, total, err := t.ListUsers(ctx, store.ListOptions{Offset: offset, Limit: 500})
			if err != nil {
				return err
			}
			for _, u := range users {
				if u.SourceName != connection || (u.Source != store.SourceSSO && u.Source != store.SourceSCIM) {
					continue
				}
				if err := t.endLogin(ctx, u.UserName, u.ID, "", "the IdP connection "+connection+" was disabled"); err != nil {
					return err
				}
				n++
			}
			offset += len(users)
			if len(users) == 0 || offset >= total {
				return nil
			}
		}
	})
	return n, err
}

// endTokens refuses every token of userName issued until now, without an
// event of its own (the caller's event ends the sessions).
func (t *tx) endTokens(ctx context.Context, userName, reason string) error {
	_, err := t.PutLoginEnd(ctx, store.LoginEnd{UserName: userName, Reason: reason})
	return err
}
