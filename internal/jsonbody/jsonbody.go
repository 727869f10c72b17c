// Package jsonbody reads JSON request bodies for every route that takes one:
// one object, valid UTF-8, within the body limit and in time, with errors a
// client can act on.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/ovosgw/gateway/api"
)

// Decode reads exactly one JSON object from the body into v: the media type
// must be JSON (415), the body must fit the limit (413) and arrive in time
// (408), be valid UTF-8 (encoding/json would otherwise replace bad bytes
// silently) and hold nothing after the object (400). Names are matched
// exactly, as documented (not in any case as encoding/json would). When
// strict, it must also name no unknown member. Other APIs' dialects are not
// strict: their clients send members the gateway does not know, which those
// APIs ignore too; but a known member's name in another case is refused.
func Decode(r *http.Request, v any, strict bool) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return api.Errorf(api.EUNSUPPORTED, "the body must be application/json")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return api.Errorf(api.ETOOLARGE, "the body is larger than %d bytes", tooLarge.Limit)
		}
		if api.ErrorCode(err) == api.ETIMEOUT {
			// middleware.ErrBodyTimeout: the client took too long.
			return api.Errorf(api.ETIMEOUT, "the body did not arrive in time")
		}
		return api.Errorf(api.EINVALID, "the body could not be read")
	}
	if !utf8.Valid(body) {
		return api.Errorf(api.EINVALID, "the body is not valid UTF-8")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return api.Errorf(api.EINVALID, "the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return api.Errorf(api.EINVALID, "%s", describeJSONError(err))
	}
	if dec.More() {
		return api.Errorf(api.EINVALID, "the body must hold a single JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return api.Errorf(api.EINVALID, "the body must hold a single JSON object")
	}
	// encoding/json matched names in any case; the API's are exact. Not
	// strict, members nobody knows pass, but one that names a field in
	// another case is refused: the API spoken would not read it as that
	// field.
	check := api.ExactNames
	if !strict {
		check = api.NoFoldedNames
	}
	if err := check(trimmed, v); err != nil {
		return api.Errorf(api.EINVALID, "%s", err)
	}
	return nil
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("member %q must be %s", typ.Field, jsonKind(typ.Type.Kind().String()))
		}
		return "the body must be a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the JSON body ends too early"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown member " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	default:
		return "malformed JSON"
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice", "array":
		return "a list"
	case "bool":
		return "a boolean"
	case "struct", "map":
		return "an object"
	default:
		return "a number"
	}
}
