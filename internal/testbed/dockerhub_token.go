package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/example/custom-nginx/internal/config"
)

// The names and values of Docker Hub that clients (the engine, BuildKit, the docker
// provider, the CLI) have built in; the tests' own Hub answers under the same ones.
const (
	HubRegistryHost = config.DockerHubRegistry // where the engine pulls and pushes docker.io images
	HubIndexHost    = "index.docker.io"        // the index name docker login defaults to
	HubAuthHost     = "auth.docker.io"         // the token service
	HubService      = "registry.docker.io"     // the service the registry names in its challenge, the tokens' aud
	HubRealm        = "https://" + HubAuthHost + "/token"
	HubServerAddr   = "https://" + HubIndexHost + "/v1/" // the engine's and the CLI's key for Hub credentials
)

// hubTokenLifetime is what Hub gives its tokens: 300 s.
const hubTokenLifetime = 300 * time.Second

// HubAccounts is who the tests' Docker Hub knows.
type HubAccounts struct {
	Users          map[string]string // user name → password (or read & write access token)
	ReadOnlyTokens map[string]string // user name → a read-only access token of that user
	// Private lists repositories ("alice/secret") only their owner may pull. Hub makes a
	// new repository public, and so does this Hub for every repository not listed.
	Private []string
}

// hubIdentity is who a token request authenticated as: name "" is anonymous.
type hubIdentity struct {
	name     string
	readOnly bool // authenticated with a read-only access token
}

func (id hubIdentity) String() string {
	switch {
	case id.name == "":
		return "anonymous"
	case id.readOnly:
		return id.name + " (read-only token)"
	default:
		return id.name + " (password)"
	}
}

// TokenService is Docker Hub's token service (auth.docker.io/token) as documented in
// https://docs.docker.com/registry/spec/auth/token/ and .../oauth/, with Hub's access
// rules: anyone pulls public repositories (library/* included), a user pushes only under
// their own namespace, a read-only token never pushes. It signs ES256 JWTs that
// distribution 2.8 accepts.
type TokenService struct {
	accounts HubAccounts
	key      *ecdsa.PrivateKey
	keyID    string
	certPEM  []byte // self-signed certificate of key: the registry's rootcertbundle
	logf     func(string, ...any)

	mu  sync.Mutex
	log []string
}

// NewTokenService makes a token service with a fresh signing key; it logs each request's
// granted and refused scopes (never a password) through logf, and keeps them for Log.
func NewTokenService(accounts HubAccounts, logf func(string, ...any)) (*TokenService, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	keyID, err := LibtrustKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	certPEM, err := signerCertPEM(key)
	if err != nil {
		return nil, err
	}
	return &TokenService{accounts: accounts, key: key, keyID: keyID, certPEM: certPEM, logf: logf}, nil
}

// SigningCertPEM is the certificate of the key the tokens are signed with.
func (s *TokenService) SigningCertPEM() []byte { return s.certPEM }

// PublicKey is the key that verifies the tokens.
func (s *TokenService) PublicKey() *ecdsa.PublicKey { return &s.key.PublicKey }

// KeyID is the tokens' `kid`: the libtrust fingerprint of the signing key.
func (s *TokenService) KeyID() string { return s.keyID }

// Log is the lines logged so far, one per token request.
func (s *TokenService) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// tokenRequest is a token request, from GET's query or POST's (OAuth2) form.
type tokenRequest struct {
	service  string
	scopes   []string
	user     string
	password string
	hasCreds bool
}

// ServeHTTP answers GET /token (credentials by basic auth, none for anonymous) and
// POST /token (OAuth2 password grant, as containerd and BuildKit send with credentials).
func (s *TokenService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	req, problem := parseTokenRequest(r)
	if problem != "" {
		s.record("%s /token refused: %s", r.Method, problem)
		writeJSON(w, http.StatusBadRequest, map[string]string{"details": problem})
		return
	}
	id, ok := s.authenticate(req)
	if !ok {
		s.record("%s /token for %q: incorrect username or password; refused %s", r.Method, req.user, scopeList(req.scopes))
		writeJSON(w, http.StatusUnauthorized, map[string]string{"details": "incorrect username or password"})
		return
	}
	access, granted, refused := s.grant(id, req.scopes)
	token, issued, err := s.sign(id, access)
	if err != nil {
		s.record("%s /token for %s: signing failed: %v", r.Method, id, err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"details": "internal error"})
		return
	}
	s.record("%s /token for %s: granted %s; refused %s", r.Method, id, scopeList(granted), scopeList(refused))
	body := map[string]any{
		"token":        token,
		"access_token": token,
		"expires_in":   int(hubTokenLifetime.Seconds()),
		"issued_at":    issued.UTC().Format(time.RFC3339),
	}
	if r.Method == http.MethodPost {
		body["scope"] = strings.Join(granted, " ")
	}
	writeJSON(w, http.StatusOK, body)
}

func parseTokenRequest(r *http.Request) (tokenRequest, string) {
	var req tokenRequest
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		req.service, req.scopes = q.Get("service"), q["scope"]
		req.user, req.password, req.hasCreds = r.BasicAuth()
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			return req, "unreadable form: " + err.Error()
		}
		if grant := r.PostForm.Get("grant_type"); grant != "password" {
			return req, "unsupported grant_type " + grant + " (this Hub issues no refresh tokens)"
		}
		req.service = r.PostForm.Get("service")
		for _, scope := range r.PostForm["scope"] { // space-separated in OAuth2
			req.scopes = append(req.scopes, strings.Fields(scope)...)
		}
		req.user, req.password, req.hasCreds = r.PostForm.Get("username"), r.PostForm.Get("password"), true
	default:
		return req, "method " + r.Method + " not allowed"
	}
	if req.service != HubService {
		return req, fmt.Sprintf("unknown service %q", req.service)
	}
	return req, ""
}

// authenticate checks the credentials: none is anonymous; a password or a read-only token.
func (s *TokenService) authenticate(req tokenRequest) (hubIdentity, bool) {
	if !req.hasCreds {
		return hubIdentity{}, true
	}
	same := func(want string, ok bool) bool {
		return ok && subtle.ConstantTimeCompare([]byte(want), []byte(req.password)) == 1
	}
	if want, ok := s.accounts.Users[req.user]; same(want, ok) {
		return hubIdentity{name: req.user}, true
	}
	if want, ok := s.accounts.ReadOnlyTokens[req.user]; same(want, ok) {
		return hubIdentity{name: req.user, readOnly: true}, true
	}
	return hubIdentity{}, false
}

// hubAccess is one entry of a token's access claim.
type hubAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// grant applies Hub's rules to each requested scope ("repository:alice/app:pull,push"):
// access is what the token carries; granted and refused name the scopes for the log.
func (s *TokenService) grant(id hubIdentity, scopes []string) (access []hubAccess, granted, refused []string) {
	access = []hubAccess{} // Hub sends "access":[] when it grants nothing
	for _, scope := range scopes {
		kind, rest, _ := strings.Cut(scope, ":")
		i := strings.LastIndex(rest, ":")
		if kind != "repository" || i < 0 {
			refused = append(refused, scope)
			continue
		}
		repo, actions := rest[:i], strings.Split(rest[i+1:], ",")
		slices.Sort(actions) // the log reads the same whatever order a client asks in
		actions = slices.Compact(actions)
		var yes, no []string
		for _, action := range actions {
			if s.allows(id, repo, action) {
				yes = append(yes, action)
			} else {
				no = append(no, action)
			}
		}
		if len(yes) > 0 {
			access = append(access, hubAccess{Type: kind, Name: repo, Actions: yes})
			granted = append(granted, kind+":"+repo+":"+strings.Join(yes, ","))
		}
		if len(no) > 0 {
			refused = append(refused, kind+":"+repo+":"+strings.Join(no, ","))
		}
	}
	return access, granted, refused
}

// allows is Hub's rule for one action on one repository.
func (s *TokenService) allows(id hubIdentity, repo, action string) bool {
	namespace, _, _ := strings.Cut(repo, "/")
	owner := id.name != "" && namespace == id.name
	switch action {
	case "pull":
		return owner || !slices.Contains(s.accounts.Private, repo)
	case "push":
		return owner && !id.readOnly
	default: // delete, *: Hub grants them to no token of a registry client
		return false
	}
}

// hubClaims is a token's claim set as distribution 2.8 reads it: `aud` one string, not
// the list golang-jwt's RegisteredClaims writes.
type hubClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  string           `json:"aud"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ID        string           `json:"jti"`
	Access    []hubAccess      `json:"access"`
}

func (c hubClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c hubClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c hubClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c hubClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c hubClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c hubClaims) GetAudience() (jwt.ClaimStrings, error)       { return jwt.ClaimStrings{c.Audience}, nil }

// sign makes the ES256 JWT for id with access, its `kid` the signing key's libtrust ID.
func (s *TokenService) sign(id hubIdentity, access []hubAccess) (string, time.Time, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", time.Time{}, err
	}
	now := time.Now()
	token := jwt.NewWithClaims(jwt.SigningMethodES256, hubClaims{
		Issuer:    HubAuthHost,
		Subject:   id.name,
		Audience:  HubService,
		ExpiresAt: jwt.NewNumericDate(now.Add(hubTokenLifetime)),
		NotBefore: jwt.NewNumericDate(now),
		IssuedAt:  jwt.NewNumericDate(now),
		ID:        hex.EncodeToString(jti),
		Access:    access,
	})
	token.Header["kid"] = s.keyID
	signed, err := token.SignedString(s.key)
	return signed, now, err
}

func (s *TokenService) record(format string, args ...any) {
	line := "docker hub token service: " + fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.log = append(s.log, line)
	s.mu.Unlock()
	if s.logf != nil {
		s.logf("%s", line)
	}
}

func scopeList(scopes []string) string {
	if len(scopes) == 0 {
		return "nothing"
	}
	return "[" + strings.Join(scopes, " ") + "]"
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
