package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ovosgw/gateway/internal/jsonbody"
)

// decodeJSON reads exactly one JSON object from the body into v, naming no
// unknown member (jsonbody.Decode).
func decodeJSON(r *http.Request, v any) error {
	return jsonbody.Decode(r, v, true)
}

// writeJSON sends v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b = append(b, '\n')
	_, _ = w.Write(b)
	return nil
}
