package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// MinTokenLen is the shortest API token LoadTokens accepts: 16 characters
// of a random token (openssl rand -hex 16 gives 32) are far beyond guessing
// over HTTP.
const MinTokenLen = 16

// LoadTokens reads an API token file: one bearer token per line, surrounding
// whitespace ignored, blank lines and lines starting with # skipped. Several
// tokens let a token be rotated: add the new one, move clients, remove the
// old one. A file without a token, or with a token shorter than MinTokenLen
// or holding spaces, is an error.
func LoadTokens(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("API token file: %w", err)
	}
	var toks []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		switch {
		case t == "" || strings.HasPrefix(t, "#"):
			continue
		case len(t) < MinTokenLen:
			return nil, fmt.Errorf("API token file %s, line %d: token shorter than %d characters", path, line, MinTokenLen)
		case strings.ContainsAny(t, " \t"):
			return nil, fmt.Errorf("API token file %s, line %d: a token holds no spaces", path, line)
		}
		toks = append(toks, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("API token file %s: %w", path, err)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("API token file %s holds no token", path)
	}
	return toks, nil
}

// tokenSet checks presented tokens in constant time: it compares SHA-256
// digests (so neither a token's length nor its content leaks through
// timing) against every accepted token, without stopping at a match.
type tokenSet struct {
	sums  [][sha256.Size]byte
	first string // sent to the other members when the status page asks them
}

func newTokenSet(toks []string) *tokenSet {
	s := &tokenSet{}
	for _, t := range toks {
		s.sums = append(s.sums, sha256.Sum256([]byte(t)))
	}
	if len(toks) > 0 {
		s.first = toks[0]
	}
	return s
}

func (s *tokenSet) valid(tok string) bool {
	h := sha256.Sum256([]byte(tok))
	ok := 0
	for i := range s.sums {
		ok |= subtle.ConstantTimeCompare(h[:], s.sums[i][:])
	}
	return ok == 1
}

// presented returns the token of r's Authorization header: a Bearer token,
// or the password of Basic credentials (any user name), which lets a browser
// open the status page through its login prompt.
func presented(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return rest, rest != ""
	case strings.EqualFold(scheme, "Basic"):
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", false
		}
		_, pass, ok := strings.Cut(string(b), ":")
		return pass, ok && pass != ""
	}
	return "", false
}

// authRealm names the protection space in WWW-Authenticate.
const authRealm = `realm="nearcache"`

// protect wraps h: with tokens configured, a request without a valid token
// gets 401 and a WWW-Authenticate challenge (RFC 6750), Bearer for API
// clients and Basic for browsers.
func (s *Server) protect(h http.HandlerFunc) http.HandlerFunc {
	if len(s.cfg.Tokens) == 0 {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := presented(r)
		if ok && s.tokens.Load().valid(tok) {
			h(w, r)
			return
		}
		s.authFailures.Add(1)
		msg := "this endpoint needs an API token: Authorization: Bearer <token>"
		bearer := "Bearer " + authRealm
		if ok {
			msg = "the API token is not valid"
			bearer += `, error="invalid_token"`
		}
		w.Header().Add("WWW-Authenticate", bearer)
		w.Header().Add("WWW-Authenticate", "Basic "+authRealm+`, charset="UTF-8"`)
		writeError(w, http.StatusUnauthorized, msg)
	}
}

// SetTokens replaces the API tokens (a rotation: the file re-read on
// SIGHUP). A server started without tokens cannot start requiring them,
// nor one started with tokens stop: that is a restart.
func (s *Server) SetTokens(toks []string) error {
	if len(toks) == 0 || len(s.cfg.Tokens) == 0 {
		return errors.New("server: SetTokens needs tokens, on a server started with tokens")
	}
	s.tokens.Store(newTokenSet(toks))
	return nil
}
