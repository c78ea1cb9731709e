package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// errorTest is a configuration ParsePlugin rejects, and the message it gives.
type errorTest struct {
	name string
	data string
	want string
}

// okDelegates is a valid delegates key for configurations that are wrong elsewhere.
const okDelegates = `"delegates":[{"type":"bridge"}]`

func TestParsePluginDocumentErrors(t *testing.T) {
	checkErrors(t, []errorTest{
		{"not JSON", `{"a":`, `plugin config: "{\"a\":" is not allowed; want a JSON object (unexpected end of JSON input at byte 5)`},
		{"empty input", ``, `plugin config: missing or empty; want a JSON object (unexpected end of JSON input at byte 0)`},
		{"trailing data", `{} {}`, `plugin config: "{} {}" is not allowed; want a JSON object (invalid character '{' after top-level value at byte 4)`},
		{"array", `[1, 2]`, `plugin config: "[1,2]" is not allowed; want a JSON object`},
		{"null", `null`, `plugin config: "null" is not allowed; want a JSON object`},
		{"string", `"x"`, `plugin config: "\"x\"" is not allowed; want a JSON object`},
	})
}

func TestParsePluginTypeErrors(t *testing.T) {
	long := strings.Repeat("x", 100)
	checkErrors(t, []errorTest{
		{"string for bool", `{` + okDelegates + `,"logToStderr":"false"}`, `plugin config: field "logToStderr": "\"false\"" is not allowed; want true or false`},
		{"number for string", `{` + okDelegates + `,"cniVersion":1}`, `plugin config: field "cniVersion": "1" is not allowed; want a string`},
		{"key case as declared", `{` + okDelegates + `,"LOGLEVEL":1}`, `plugin config: field "logLevel": "1" is not allowed; want a string`},
		{"delegates not array", `{"delegates":{}}`, `plugin config: field "delegates": "{}" is not allowed; want an array of CNI configurations`},
		{"array item", `{` + okDelegates + `,"systemNamespaces":["a", 1]}`, `plugin config: field "systemNamespaces": "[\"a\",1]" is not allowed; want an array of strings`},
		{"nested", `{` + okDelegates + `,"logOptions":{"maxSize":"big"}}`, `plugin config: field "logOptions.maxSize": "\"big\"" is not allowed; want an integer`},
		{"nested fraction", `{` + okDelegates + `,"logOptions":{"MaxAge":1.5}}`, `plugin config: field "logOptions.maxAge": "1.5" is not allowed; want an integer`},
		{"nested bool", `{` + okDelegates + `,"logOptions":{"compress":"yes"}}`, `plugin config: field "logOptions.compress": "\"yes\"" is not allowed; want true or false`},
		{"logOptions not object", `{` + okDelegates + `,"logOptions":[]}`, `plugin config: field "logOptions": "[]" is not allowed; want an object`},
		{"capability not bool", `{` + okDelegates + `,"capabilities":{"portMappings":"yes"}}`, `plugin config: field "capabilities": "{\"portMappings\":\"yes\"}" is not allowed; want an object of booleans`},
		{"runtimeConfig not object", `{` + okDelegates + `,"runtimeConfig":1}`, `plugin config: field "runtimeConfig": "1" is not allowed; want an object of JSON values`},
		{"globalNamespaces number", `{` + okDelegates + `,"globalNamespaces":1}`, `plugin config: field "globalNamespaces": "1" is not allowed; want a comma-separated string or an array of strings`},
		{"globalNamespaces mixed array", `{` + okDelegates + `,"globalNamespaces":["a",1]}`, `plugin config: field "globalNamespaces": "[\"a\",1]" is not allowed; want a comma-separated string or an array of strings`},
		{"duration number", `{` + okDelegates + `,"apiTimeout":10}`, `plugin config: field "apiTimeout": "10" is not allowed; want a duration string such as "10s" or "1m30s"`},
		{"duration syntax", `{` + okDelegates + `,"APIRetryBudget":"10 seconds"}`, `plugin config: field "apiRetryBudget": "10 seconds" is not allowed; want a duration string such as "10s" or "1m30s"`},
		{"long value shortened", `{` + okDelegates + `,"name":["` + long + `"]}`, `plugin config: field "name": "[\"` + long[:75] + `..." is not allowed; want a string`},
	})
}

func TestParsePluginValidationErrors(t *testing.T) {
	checkErrors(t, []errorTest{
		{"cniVersion", `{` + okDelegates + `,"cniVersion":"0.5.0"}`, `plugin config: field "cniVersion": "0.5.0" is not allowed; want one of 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0`},
		{"no network", `{"cniVersion":"1.0.0"}`, `plugin config: field "clusterNetwork": missing or empty; want a cluster network (a NAD name, a configuration name, folder or file), or a non-empty delegates list`},
		{"empty delegates", `{"clusterNetwork":"","delegates":[]}`, `plugin config: field "clusterNetwork": missing or empty; want a cluster network (a NAD name, a configuration name, folder or file), or a non-empty delegates list`},
		{"delegate without type", `{"delegates":[{"type":"a"},{"name":"x"}]}`, `plugin config: field "delegates[1]": "{\"name\":\"x\"}" is not allowed; want ` + allowedDelegate},
		{"delegate list without type", `{"delegates":[{"plugins":[{"name":"p"}]}]}`, `plugin config: field "delegates[0]": "{\"plugins\":[{\"name\":\"p\"}]}" is not allowed; want ` + allowedDelegate},
		{"delegate not object", `{"delegates":[ 1 ]}`, `plugin config: field "delegates[0]": "1" is not allowed; want ` + allowedDelegate},
		{"empty default network", `{` + okDelegates + `,"defaultNetworks":["a",""]}`, `plugin config: field "defaultNetworks[1]": missing or empty; want a network name`},
		{"multusNamespace", `{` + okDelegates + `,"multusNamespace":"Kube_System"}`, `plugin config: field "multusNamespace": "Kube_System" is not allowed; want ` + allowedLabel},
		{"empty multusNamespace", `{` + okDelegates + `,"multusNamespace":""}`, `plugin config: field "multusNamespace": missing or empty; want ` + allowedLabel},
		{"systemNamespaces", `{` + okDelegates + `,"systemNamespaces":["ok","-bad"]}`, `plugin config: field "systemNamespaces[1]": "-bad" is not allowed; want ` + allowedLabel},
		{"globalNamespaces", `{` + okDelegates + `,"globalNamespaces":"a, b.c"}`, `plugin config: field "globalNamespaces[1]": "b.c" is not allowed; want ` + allowedLabel},
		{"namespace too long", `{` + okDelegates + `,"systemNamespaces":["` + strings.Repeat("a", 64) + `"]}`, `plugin config: field "systemNamespaces[0]": "` + strings.Repeat("a", 64) + `" is not allowed; want ` + allowedLabel},
		{"binDir relative", `{` + okDelegates + `,"binDir":"/opt/cni/bin:bin"}`, `plugin config: field "binDir": "bin" is not allowed; want absolute paths separated by ':'`},
		{"cniDir relative", `{` + okDelegates + `,"cniDir":"var/lib"}`, `plugin config: field "cniDir": "var/lib" is not allowed; want an absolute path`},
		{"confDir empty", `{` + okDelegates + `,"confDir":""}`, `plugin config: field "confDir": missing or empty; want an absolute path`},
		{"kubeconfig relative", `{` + okDelegates + `,"kubeconfig":"kube.conf"}`, `plugin config: field "kubeconfig": "kube.conf" is not allowed; want an absolute path, or empty`},
		{"logFile relative", `{` + okDelegates + `,"logFile":"./multus.log"}`, `plugin config: field "logFile": "./multus.log" is not allowed; want an absolute path, or empty`},
		{"readinessindicatorfile relative", `{` + okDelegates + `,"readinessindicatorfile":"ready"}`, `plugin config: field "readinessindicatorfile": "ready" is not allowed; want an absolute path, or empty`},
		{"logLevel", `{` + okDelegates + `,"logLevel":"loud"}`, `plugin config: field "logLevel": "loud" is not allowed; want one of debug, verbose, error, panic`},
		{"maxAge negative", `{` + okDelegates + `,"logOptions":{"maxAge":-1}}`, `plugin config: field "logOptions.maxAge": "-1" is not allowed; want an integer of at least 0`},
		{"maxSize zero", `{` + okDelegates + `,"logOptions":{"maxSize":0}}`, `plugin config: field "logOptions.maxSize": "0" is not allowed; want an integer of at least 1`},
		{"maxBackups negative", `{` + okDelegates + `,"logOptions":{"maxBackups":-2}}`, `plugin config: field "logOptions.maxBackups": "-2" is not allowed; want an integer of at least 0`},
		{"apiTimeout zero", `{` + okDelegates + `,"apiTimeout":"0s"}`, `plugin config: field "apiTimeout": "0s" is not allowed; want a positive duration such as "10s"`},
		{"apiRetryBudget negative", `{` + okDelegates + `,"apiRetryBudget":"-1s"}`, `plugin config: field "apiRetryBudget": "-1s" is not allowed; want a positive duration such as "10s"`},
		{"readinessIndicatorTimeout zero", `{` + okDelegates + `,"readinessIndicatorTimeout":"0"}`, `plugin config: field "readinessIndicatorTimeout": "0s" is not allowed; want a positive duration such as "10s"`},
		{"maxNetworksPerPod zero", `{` + okDelegates + `,"maxNetworksPerPod":0}`, `plugin config: field "maxNetworksPerPod": "0" is not allowed; want a positive integer`},
		{"maxNetworksPerPod negative", `{` + okDelegates + `,"maxNetworksPerPod":-3}`, `plugin config: field "maxNetworksPerPod": "-3" is not allowed; want a positive integer`},
		{"maxNetworksPerPod not a number", `{` + okDelegates + `,"maxNetworksPerPod":"many"}`, `plugin config: field "maxNetworksPerPod": "\"many\"" is not allowed; want an integer`},
		{"allowPodDeviceID not a bool", `{` + okDelegates + `,"allowPodDeviceID":"yes"}`, `plugin config: field "allowPodDeviceID": "\"yes\"" is not allowed; want true or false`},
	})
}

func checkErrors(t *testing.T, tests []errorTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParsePlugin([]byte(tt.data))
			if err == nil {
				t.Fatalf("ParsePlugin(%s) = %+v, want error", tt.data, c)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FieldError", err, err)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePluginErrorFields(t *testing.T) {
	_, err := ParsePlugin([]byte(`{"clusterNetwork":"n","logLevel":"loud"}`))
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FieldError", err)
	}
	want := &FieldError{Field: "logLevel", Value: "loud", Allowed: "one of debug, verbose, error, panic"}
	if diff := cmp.Diff(want, fe); diff != "" {
		t.Errorf("FieldError (-want +got):\n%s", diff)
	}
}
