package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// stdinOf decodes a record's stdin into a generic map.
func stdinOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("recorded stdin %s: %v", raw, err)
	}
	return m
}

// TestRuntimeArguments proves what each delegate is given, over every CNI version:
// the runtime's runtimeConfig reaches the cluster network only; each
// selection's ips, mac, infiniband-guid, portMappings, bandwidth and deviceID reach
// its own attachment as runtimeConfig (R-4.1.2.1.3, .4, .7, .8, .10); cni-args merge
// over the NAD's own args in every plugin of a conflist, the selection winning
// (R-4.1.2.1.6); every delegate gets the K8S_POD_* CNI_ARGS.
func TestRuntimeArguments(t *testing.T) {
	modes(t, func(t *testing.T) {
		for _, v := range cniVersions {
			t.Run(v, func(t *testing.T) {
				e := newEnv(t)
				allCaps := map[string]any{"capabilities": map[string]bool{
					"ips": true, "mac": true, "infinibandGUID": true, "portMappings": true, "bandwidth": true, "deviceID": true,
				}}
				e.nad("caps", e.recorderConf(v, "caps", allCaps), nil)
				e.nad("plain", `{"cniVersion":"`+v+`","name":"plain","plugins":[`+
					e.recorderConf(v, "", map[string]any{"args": map[string]any{"cni": map[string]any{"keep": "nad", "override": "nad"}}})+","+
					e.recorderConf(v, "", nil)+`]}`, nil)
				cluster := e.recorderMap(v, "cluster")
				cluster["capabilities"] = map[string]bool{"portMappings": true, "bandwidth": true}
				// allowPodDeviceID: the caps NAD names no resource, so the
				// pod's deviceID is honoured only when the operator allows it.
				conf := e.multusConf(v, map[string]any{"delegates": []any{cluster}, "capabilities": map[string]bool{"portMappings": true, "bandwidth": true},
					"allowPodDeviceID": true})
				pod, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": `[
				{"name":"caps","ips":["10.9.9.9/24"],"mac":"c2:00:00:00:00:09","infiniband-guid":"c2:11:22:33:44:55:66:77",
				 "portMappings":[{"hostPort":8080,"containerPort":80}],"bandwidth":{"ingressRate":1000000000,"ingressBurst":2000000000},
				 "deviceID":"0000:03:00.1"},
				{"name":"plain","cni-args":{"override":"pod","added":42}}]`})
				sb.CapabilityArgs = map[string]any{"portMappings": []map[string]any{{"hostPort": 9090, "containerPort": 90, "protocol": "tcp"}}}
				e.add(conf, sb)

				adds := e.recordsFor("ADD")
				if len(adds) != 4 {
					t.Fatalf("%d delegate ADDs, want 4 (cluster, caps, plain x2)", len(adds))
				}
				rcCluster, _ := stdinOf(t, adds[0].Stdin)["runtimeConfig"].(map[string]any)
				if pm, _ := json.Marshal(rcCluster["portMappings"]); !strings.Contains(string(pm), `"hostPort":9090`) {
					t.Errorf("R-7.5: the cluster network lacks the runtime's portMappings: %s", adds[0].Stdin)
				}
				caps := stdinOf(t, adds[1].Stdin)
				rc, _ := caps["runtimeConfig"].(map[string]any)
				rcJSON, _ := json.Marshal(rc)
				for _, want := range []string{`"ips":["10.9.9.9/24"]`, `"mac":"c2:00:00:00:00:09"`, `"infinibandGUID":"c2:11:22:33:44:55:66:77"`,
					`"hostPort":8080`, `"ingressRate":1000000000`, `"deviceID":"0000:03:00.1"`} {
					if !strings.Contains(string(rcJSON), want) {
						t.Errorf("selection runtimeConfig %s lacks %s", rcJSON, want)
					}
				}
				if strings.Contains(string(rcJSON), "9090") {
					t.Errorf("R-7.5: the runtime's portMappings leaked to a secondary attachment: %s", rcJSON)
				}
				for i, rec := range adds[2:] {
					args, _ := stdinOf(t, rec.Stdin)["args"].(map[string]any)
					cni, _ := args["cni"].(map[string]any)
					if cni["override"] != "pod" || cni["added"] != float64(42) || (i == 0 && cni["keep"] != "nad") {
						t.Errorf("R-4.1.2.1.6: plugin %d of plain got args %v", i, args)
					}
					if _, ok := stdinOf(t, rec.Stdin)["runtimeConfig"]; ok {
						t.Errorf("R-7.5: plain got a runtimeConfig: %s", rec.Stdin)
					}
				}
				for _, rec := range adds {
					for key, want := range map[string]string{"K8S_POD_NAMESPACE": e.namespace, "K8S_POD_NAME": "pod-1", "K8S_POD_UID": string(pod.UID), "K8S_POD_INFRA_CONTAINER_ID": sb.ContainerID} {
						if got, _ := rec.Arg(key); got != want {
							t.Errorf("CNI_ARGS %s = %q, want %q", key, got, want)
						}
					}
				}
				e.del(conf, sb)
				// DEL gives each delegate exactly what ADD gave it: the same config and
				// runtime arguments, from the record.
				dels := e.recordsFor("DEL")
				for i, add := range adds {
					del := dels[len(dels)-1-i]
					if stripPrev(t, del.Stdin) != stripPrev(t, add.Stdin) {
						t.Errorf("DEL %d stdin differs from its ADD:\nADD %s\nDEL %s", i, add.Stdin, del.Stdin)
					}
				}
			})
		}
	})
}

// stripPrev drops prevResult, which libcni adds on DEL of versions >= 0.4.0.
func stripPrev(t *testing.T, raw string) string {
	m := stdinOf(t, raw)
	delete(m, "prevResult")
	out, _ := json.Marshal(m)
	return string(out)
}

// TestMissingCapabilityFails: a selection that asks for a runtime argument that no
// plugin of its network declares fails the attachment, as the standard requires
// (R-4.1.2.1.3, .4, .7, .8, .10).
func TestMissingCapabilityFails(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		e.nad("nocaps", e.recorderConf(v, "nocaps", nil), nil)
		conf := e.multusConf(v, map[string]any{"delegates": []any{e.recorderMap(v, "cluster")}})
		cases := map[string]string{
			"R-4.1.2.1.3":  `"ips":["10.1.1.1/24"]`,
			"R-4.1.2.1.4":  `"mac":"c2:00:00:00:00:01"`,
			"R-4.1.2.1.7":  `"portMappings":[{"hostPort":1,"containerPort":2}]`,
			"R-4.1.2.1.8":  `"bandwidth":{"ingressRate":1000}`,
			"R-4.1.2.1.10": `"infiniband-guid":"c2:11:22:33:44:55:66:77"`,
		}
		n := 0
		for req, key := range cases {
			n++
			_, sb, _ := e.pod("pod-"+strings.ToLower(strings.ReplaceAll(req, ".", "-")), map[string]string{"k8s.v1.cni.cncf.io/networks": `[{"name":"nocaps",` + key + `}]`})
			_, err := e.rt.Add(e.ctx, conf, sb)
			if ce := cniError(t, err); ce.Code != cnicode.CapabilityMissing || !strings.Contains(ce.Msg, req) || !strings.Contains(ce.Msg, e.namespace+"/nocaps") {
				t.Errorf("%s: got %v, want code %d citing %s and naming the network", req, err, cnicode.CapabilityMissing, req)
			}
		}
		if got := len(e.recordsFor("ADD")); got != 0 {
			t.Errorf("%d delegates ran although every request was refused", got)
		}
	})
}
