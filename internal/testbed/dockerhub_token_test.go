package testbed

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// tokenServiceForTest is a token service for alice (password and a read-only token) and
// bob, with alice/private private, behind an httptest server.
func tokenServiceForTest(t *testing.T) (*TokenService, *httptest.Server) {
	t.Helper()
	s, err := NewTokenService(HubAccounts{
		Users:          map[string]string{"alice": "alice-pw", "bob": "bob-pw"},
		ReadOnlyTokens: map[string]string{"alice": "alice-ro"},
		Private:        []string{"alice/private"},
	}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// getToken asks srv for scopes as user:password ("" user: anonymous) and returns the
// status and decoded body.
func getToken(t *testing.T, srv *httptest.Server, user, password string, scopes ...string) (int, map[string]any) {
	t.Helper()
	q := url.Values{"service": {HubService}, "scope": scopes}
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/token?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	return doTokenRequest(t, req)
}

func doTokenRequest(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("token response %d is not JSON: %v: %s", resp.StatusCode, err, raw)
	}
	return resp.StatusCode, body
}

// verifiedAccess checks the token as distribution 2.8 does (ES256, kid the signing key's
// libtrust ID, iss, aud one string) and returns its access claim as "name:actions".
func verifiedAccess(t *testing.T, s *TokenService, body map[string]any) []string {
	t.Helper()
	raw, _ := body["token"].(string)
	if raw == "" || body["access_token"] != raw || body["expires_in"] != float64(300) || body["issued_at"] == nil {
		t.Fatalf("token response lacks token, access_token, expires_in 300 or issued_at: %v", body)
	}
	var claims hubClaims
	tok, err := jwt.ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
		if tok.Header["kid"] != s.KeyID() {
			t.Errorf("kid %v, want %s", tok.Header["kid"], s.KeyID())
		}
		return s.PublicKey(), nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(HubAuthHost), jwt.WithAudience(HubService), jwt.WithExpirationRequired())
	if err != nil || !tok.Valid {
		t.Fatalf("token does not verify: %v", err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	if !strings.Contains(string(payload), `"aud":"`+HubService+`"`) || !strings.Contains(string(payload), `"access":[`) {
		t.Errorf("payload %s: want aud one string and an access list", payload)
	}
	var access []string
	for _, a := range claims.Access {
		access = append(access, a.Name+":"+strings.Join(a.Actions, ","))
	}
	return access
}

func TestLibtrustKeyIDFormat(t *testing.T) {
	s, _ := tokenServiceForTest(t)
	if !regexp.MustCompile(`^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$`).MatchString(s.KeyID()) {
		t.Errorf("key ID %q is not 12 groups of 4 base32 characters", s.KeyID())
	}
}

func TestTokenServiceRules(t *testing.T) {
	s, srv := tokenServiceForTest(t)
	for _, c := range []struct {
		name, user, password, scope string
		want                        []string
	}{
		{"anonymous pulls library", "", "", "repository:library/nginx:pull", []string{"library/nginx:pull"}},
		{"anonymous never pushes", "", "", "repository:library/nginx:pull,push", []string{"library/nginx:pull"}},
		{"anonymous pulls a public repository", "", "", "repository:alice/app:pull", []string{"alice/app:pull"}},
		{"anonymous does not pull a private one", "", "", "repository:alice/private:pull", nil},
		{"owner pulls and pushes", "alice", "alice-pw", "repository:alice/app:push,pull", []string{"alice/app:pull,push"}},
		{"owner pulls her private repository", "alice", "alice-pw", "repository:alice/private:pull", []string{"alice/private:pull"}},
		{"no push to another namespace", "alice", "alice-pw", "repository:bob/app:pull,push", []string{"bob/app:pull"}},
		{"no pull of another's private repository", "bob", "bob-pw", "repository:alice/private:pull", nil},
		{"read-only token pulls, never pushes", "alice", "alice-ro", "repository:alice/app:pull,push", []string{"alice/app:pull"}},
		{"read-only token pulls its user's private repository", "alice", "alice-ro", "repository:alice/private:pull", []string{"alice/private:pull"}},
		{"no delete", "alice", "alice-pw", "repository:alice/app:delete", nil},
		{"no catalog", "alice", "alice-pw", "registry:catalog:*", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := getToken(t, srv, c.user, c.password, c.scope)
			if status != http.StatusOK {
				t.Fatalf("status %d: %v", status, body)
			}
			if got := verifiedAccess(t, s, body); !slices.Equal(got, c.want) {
				t.Errorf("access %v, want %v", got, c.want)
			}
		})
	}
}

func TestTokenServiceRepeatedScopes(t *testing.T) {
	s, srv := tokenServiceForTest(t)
	_, body := getToken(t, srv, "alice", "alice-pw", "repository:alice/app:pull,push", "repository:library/nginx:pull")
	if got, want := verifiedAccess(t, s, body), []string{"alice/app:pull,push", "library/nginx:pull"}; !slices.Equal(got, want) {
		t.Errorf("access %v, want %v", got, want)
	}
	log := strings.Join(s.Log(), "\n")
	if !strings.Contains(log, "alice (password): granted [repository:alice/app:pull,push repository:library/nginx:pull]; refused nothing") {
		t.Errorf("log: %s", log)
	}
}

func TestTokenServiceWrongPassword(t *testing.T) {
	s, srv := tokenServiceForTest(t)
	for _, password := range []string{"wrong", "bob-pw"} {
		status, body := getToken(t, srv, "alice", password, "repository:alice/app:pull")
		if status != http.StatusUnauthorized || body["details"] != "incorrect username or password" || body["token"] != nil {
			t.Errorf("alice with password %q: %d %v; want 401 with Hub's details", password, status, body)
		}
	}
	for _, line := range s.Log() {
		if strings.Contains(line, "wrong") || strings.Contains(line, "bob-pw") {
			t.Errorf("the log holds a password: %s", line)
		}
	}
}

// TestTokenServiceOAuthPost is the OAuth2 password grant containerd and BuildKit use when
// they have credentials.
func TestTokenServiceOAuthPost(t *testing.T) {
	s, srv := tokenServiceForTest(t)
	form := url.Values{
		"grant_type": {"password"}, "service": {HubService}, "client_id": {"containerd-client"},
		"scope": {"repository:alice/app:pull,push repository:library/nginx:pull"}, "username": {"alice"}, "password": {"alice-pw"},
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, body := doTokenRequest(t, req)
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, body)
	}
	if got, want := verifiedAccess(t, s, body), []string{"alice/app:pull,push", "library/nginx:pull"}; !slices.Equal(got, want) {
		t.Errorf("access %v, want %v", got, want)
	}
	form.Set("grant_type", "refresh_token")
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if status, body := doTokenRequest(t, req); status != http.StatusBadRequest {
		t.Errorf("refresh_token grant: %d %v, want 400", status, body)
	}
}
