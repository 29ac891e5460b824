package exchange

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullisdb/portcullis/auth"
	"github.com/portcullisdb/portcullis/auth/cloud"
	"github.com/portcullisdb/portcullis/config"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"arn:aws:iam::1:role/etl", "arn:aws:iam::1:role/etl", true},
		{"arn:aws:iam::1:role/etl-*", "arn:aws:iam::1:role/etl-nightly", true},
		{"arn:aws:iam::*:role/etl", "arn:aws:iam::1:role/etl", true},
		{"*/userAssignedIdentities/app", "/subscriptions/x/rg/y/providers/M/userAssignedIdentities/app", true},
		{"a*b*c", "a-b-c", true},
		{"a*b*c", "a-c-b", false},
		{"arn:aws:iam::1:role/etl-*", "arn:aws:iam::2:role/etl-nightly", false},
		{"exact", "exact-not", false},
		{"*", "", true},
	}
	for _, tt := range tests {
		if got := glob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

type fakeVerifier struct{ id cloud.Identity }

func (f fakeVerifier) Verify(context.Context, string) (cloud.Identity, error) { return f.id, nil }

type recordingIssuer struct{ got auth.AccessClaims }

func (r *recordingIssuer) Issue(c auth.AccessClaims) (string, time.Time, error) {
	r.got = c
	return "tok", time.Now().Add(c.TTL), nil
}

func TestExchangeRules(t *testing.T) {
	rules := []config.ExchangeRule{
		{Platform: "aws", Identity: "arn:aws:iam::1:role/etl-*", Username: "etl@svc", Roles: []string{"etl"}, TTL: 15 * time.Minute},
		{Platform: "aws", Identity: "*", Username: "catch-all@svc", TTL: 15 * time.Minute},
		{Platform: "gcp", Identity: "a@p.iam.gserviceaccount.com", Username: "a@svc", TTL: 15 * time.Minute},
	}
	tests := []struct {
		name     string
		id       cloud.Identity
		wantUser string
		wantTTL  time.Duration
		wantErr  string
	}{
		{"first match wins", cloud.Identity{Platform: "aws", Principal: "arn:aws:iam::1:role/etl-x"}, "etl@svc", 15 * time.Minute, ""},
		{"later rule", cloud.Identity{Platform: "aws", Principal: "arn:aws:iam::9:user/bob"}, "catch-all@svc", 15 * time.Minute, ""},
		{"token capped by the proof's expiry", cloud.Identity{Platform: "gcp", Principal: "a@p.iam.gserviceaccount.com", ExpiresAt: time.Now().Add(5 * time.Minute)}, "a@svc", 5 * time.Minute, ""},
		{"no rule", cloud.Identity{Platform: "gcp", Principal: "b@p.iam.gserviceaccount.com"}, "", 0, `no exchange rule matches gcp identity "b@p.iam.gserviceaccount.com"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := &recordingIssuer{}
			e := New(map[string]SubjectVerifier{"t": fakeVerifier{tt.id}}, nil, rules, iss)
			res, err := e.Exchange(context.Background(), "t", "proof")
			if tt.wantErr != "" {
				var nr *NoRuleError
				if !errors.As(err, &nr) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err != nil || res.Username != tt.wantUser || iss.got.Subject != tt.id.Principal {
				t.Fatalf("got %+v %v", res, err)
			}
			if d := iss.got.TTL - tt.wantTTL; d > time.Second || d < -time.Second {
				t.Fatalf("TTL %v, want %v", iss.got.TTL, tt.wantTTL)
			}
		})
	}
	t.Run("unknown token type", func(t *testing.T) {
		e := New(map[string]SubjectVerifier{"t": fakeVerifier{}}, nil, rules, &recordingIssuer{})
		var de *auth.DeniedError
		if _, err := e.Exchange(context.Background(), "other", "x"); !errors.As(err, &de) {
			t.Fatalf("got %v", err)
		}
	})
}
