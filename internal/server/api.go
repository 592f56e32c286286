package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/nearcache/nearcache/node"
)

// getResponse is the body of a successful GET.
type getResponse struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
}

// writeResponse is the body of a successful PUT or invalidation.
type writeResponse struct {
	Key     string `json:"key"`
	Version uint64 `json:"version"`
	// NotAcknowledged names the live members that did not acknowledge the
	// invalidation within the ack timeout (PUT, or invalidate with ack=all).
	NotAcknowledged []string `json:"not_acknowledged,omitempty"`
	// InvalidationError is set when a PUT's write committed but spreading its
	// invalidation failed otherwise (this node still dropped its copy).
	InvalidationError string `json:"invalidation_error,omitempty"`
}

type errorResponse struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorResponse{Error: msg})
}

// errorStatus maps a read or write error to an HTTP status.
func errorStatus(err error) int {
	var (
		stale *node.StaleError
		load  *node.LoadError
	)
	switch {
	case node.IsNotFound(err):
		return http.StatusNotFound
	case errors.Is(err, node.ErrClosed), errors.Is(err, node.ErrDegraded),
		errors.Is(err, node.ErrOverloaded), errors.As(err, &stale):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.As(err, &load):
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// target resolves the group and key of a /v1/groups/{group}/keys/{key} path,
// or writes the 4xx answer and returns ok=false.
func (s *Server) target(w http.ResponseWriter, r *http.Request) (g Group, key string, ok bool) {
	name := r.PathValue("group")
	g, ok = s.groups[name]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown group %q", name))
		return g, "", false
	}
	key = r.PathValue("key")
	if key == "" || len(key) > node.MaxKeyLen {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("key must be 1 to %d bytes, got %d", node.MaxKeyLen, len(key)))
		return g, "", false
	}
	return g, key, true
}

// parseMode maps the mode query parameter to read options.
func parseMode(mode string) ([]node.ReadOption, error) {
	switch mode {
	case "", "cached":
		return nil, nil
	case "verified":
		return []node.ReadOption{node.Verified()}, nil
	case "authoritative":
		return []node.ReadOption{node.Authoritative()}, nil
	}
	return nil, fmt.Errorf("mode %q is not one of cached, verified, authoritative", mode)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	g, key, ok := s.target(w, r)
	if !ok {
		return
	}
	opts, err := parseMode(r.URL.Query().Get("mode"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	it, err := g.Cache.Get(r.Context(), key, opts...)
	if err != nil {
		writeError(w, errorStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, getResponse{Key: key, Value: it.Body, Version: it.Version})
}

// decodeValue parses a PUT body: exactly one JSON object {"value": string}.
func decodeValue(body []byte) (string, error) {
	var req struct {
		Value *string `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "", fmt.Errorf("body is not a JSON object {\"value\": \"...\"}: %w", err)
	}
	if dec.More() {
		return "", errors.New("body holds more than one JSON value")
	}
	if req.Value == nil {
		return "", errors.New(`body lacks "value"`)
	}
	return *req.Value, nil
}

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request) {
	g, key, ok := s.target(w, r)
	if !ok {
		return
	}
	if g.Source == nil {
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("group %q is read-only", g.Cache.Name()))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", maxBody))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("read body: %v", err))
		return
	}
	value, err := decodeValue(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	version, err := g.Source.Write(r.Context(), key, value)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			code = http.StatusGatewayTimeout
		}
		writeError(w, code, err.Error())
		return
	}
	// The write committed: spread it even if the client goes away, and
	// answer 200 whatever the invalidation's fate (reported in the body).
	resp := writeResponse{Key: key, Version: version}
	if err := s.invalidate(r.Context(), g, key, version, true); err != nil {
		var ae *node.AckError
		if errors.As(err, &ae) {
			resp.NotAcknowledged = ae.Missing
		} else {
			resp.InvalidationError = err.Error()
		}
		s.cfg.Logger.Warn("invalidation after write", "group", g.Cache.Name(), "key", key, "version", version, "err", err)
	}
	writeJSON(w, http.StatusOK, resp)
}

// invalidate runs g's invalidation of key, detached from the request's
// cancellation and bounded by AckTimeout.
func (s *Server) invalidate(ctx context.Context, g Group, key string, version uint64, ackAll bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.AckTimeout)
	defer cancel()
	if ackAll {
		return g.Cache.Invalidate(ctx, key, version, node.AckAll())
	}
	return g.Cache.Invalidate(ctx, key, version)
}

// parseVersion parses the version query parameter: a committed version, > 0.
func parseVersion(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("version is required (?version=N, N > 0)")
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 || v > node.MaxVersion {
		return 0, fmt.Errorf("version %q is not an integer from 1 to %d", s, uint64(node.MaxVersion))
	}
	return v, nil
}

func (s *Server) handleInvalidate(w http.ResponseWriter, r *http.Request) {
	g, key, ok := s.target(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	version, err := parseVersion(q.Get("version"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var ackAll bool
	switch a := q.Get("ack"); a {
	case "", "none":
	case "all":
		ackAll = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("ack %q is not one of none, all", a))
		return
	}
	resp := writeResponse{Key: key, Version: version}
	if err := s.invalidate(r.Context(), g, key, version, ackAll); err != nil {
		var ae *node.AckError
		if !errors.As(err, &ae) {
			writeError(w, errorStatus(err), err.Error())
			return
		}
		resp.NotAcknowledged = ae.Missing
	}
	writeJSON(w, http.StatusOK, resp)
}
