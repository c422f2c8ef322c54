//go:build ignore

// Command record runs every case of cases.json through the Go code Argo Events v1.9.11 uses
// (tidwall/gjson v1.19.0, tidwall/sjson v1.2.5, Masterminds/sprig v3, regexp, text/template,
// encoding/json) and writes each answer into the case's "go" field. See README.md.
package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"text/template"

	sprig "github.com/Masterminds/sprig/v3"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// the shape of argo-events pkg/eventsources/events WebhookEventData
type webhookEventData struct {
	Header   http.Header       `json:"header"`
	Body     *json.RawMessage  `json:"body"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func str(c map[string]interface{}, key string) string {
	s, _ := c[key].(string)
	return s
}

func run(c map[string]interface{}) map[string]interface{} {
	switch str(c, "kind") {
	case "gjson":
		r := gjson.Get(str(c, "json"), str(c, "path"))
		return map[string]interface{}{"exists": r.Exists(), "type": r.Type.String(),
			"string": r.String(), "raw": r.Raw, "bool": r.Bool(), "float": r.Float()}
	case "regexp":
		exp, err := regexp.Compile(str(c, "pattern"))
		if err != nil {
			return map[string]interface{}{"error": err.Error()}
		}
		return map[string]interface{}{"error": "", "match": exp.Match([]byte(str(c, "text")))}
	case "template":
		// as params.go getValueWithTemplate: .Input is gjson's decoded event data
		tpl, err := template.New("param").Funcs(sprig.FuncMap()).Parse(str(c, "template"))
		if err != nil {
			return map[string]interface{}{"error": err.Error()}
		}
		var buf bytes.Buffer
		input := gjson.Parse(str(c, "input")).Value()
		if err := tpl.Execute(&buf, map[string]interface{}{"Input": input}); err != nil {
			return map[string]interface{}{"error": err.Error()}
		}
		return map[string]interface{}{"error": "", "out": buf.String()}
	case "sjson":
		var out []byte
		var err error
		if raw, _ := c["raw"].(bool); raw {
			out, err = sjson.SetRawBytes([]byte(str(c, "json")), str(c, "path"), []byte(str(c, "value")))
		} else {
			out, err = sjson.SetBytes([]byte(str(c, "json")), str(c, "path"), str(c, "value"))
		}
		return map[string]interface{}{"error": errText(err), "out": string(out)}
	case "event":
		header := http.Header{}
		for k, vs := range c["header"].(map[string]interface{}) {
			for _, v := range vs.([]interface{}) {
				header[k] = append(header[k], v.(string))
			}
		}
		body := json.RawMessage(str(c, "body"))
		data, err := json.Marshal(&webhookEventData{Header: header, Body: &body})
		return map[string]interface{}{"error": errText(err), "data": string(data)}
	}
	panic("unknown kind " + str(c, "kind"))
}

func main() {
	text, err := os.ReadFile("cases.json")
	if err != nil {
		panic(err)
	}
	var cases []map[string]interface{}
	if err := json.Unmarshal(text, &cases); err != nil {
		panic(err)
	}
	for _, c := range cases {
		c["go"] = run(c)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(cases); err != nil {
		panic(err)
	}
	if err := os.WriteFile("cases.json", out.Bytes(), 0o644); err != nil {
		panic(err)
	}
}
