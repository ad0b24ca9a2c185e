// po-webhook: prometheus-operator's admission judgement of PrometheusRules and AlertmanagerConfigs, for `make e2e`.
//
// The project's own program (not upstream's cmd/admission-webhook): it calls the same public functions the
// operator's webhook calls (pkg/operator.ValidateRule with the webhook's defaults, legacy name validation and no
// PromQL options; pkg/alertmanager/validation/v1alpha1.ValidateAlertmanagerConfig), but it puts every error in the
// denial's message: the API server relays only the message, and upstream's is a bare "Rules are not valid", so
// `pulumi up` would not say which rule is wrong.
//
//	po-webhook serve -listen 127.0.0.1:PORT -cert FILE -key FILE   HTTPS admission webhook (AdmissionReview v1)
//	po-webhook check FILE...                                       the same judgement on YAML files; exit 1 if refused
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	validationv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/alertmanager/validation/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	monitoringv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
	promoperator "github.com/prometheus-operator/prometheus-operator/pkg/operator"
)

const (
	rulesPath  = "/admission-prometheusrules/validate"
	routesPath = "/admission-alertmanagerconfigs/validate"
)

// judge returns the operator's errors for one object (JSON or YAML), or nil when it would accept it.
func judge(kind string, data []byte) []error {
	switch kind {
	case "PrometheusRule":
		var rule monitoringv1.PrometheusRule
		if err := yaml.Unmarshal(data, &rule); err != nil {
			return []error{err}
		}
		return promoperator.ValidateRule(rule.Spec, model.LegacyValidation, parser.Options{})
	case "AlertmanagerConfig":
		var config monitoringv1alpha1.AlertmanagerConfig
		if err := yaml.Unmarshal(data, &config); err != nil {
			return []error{err}
		}
		if err := validationv1alpha1.ValidateAlertmanagerConfig(&config); err != nil {
			return []error{err}
		}
		return nil
	}
	return []error{fmt.Errorf("kind %q is not judged here", kind)}
}

// summary is upstream's message for a refusal, followed here by the errors themselves.
func summary(kind string, errs []error) string {
	head := map[string]string{"PrometheusRule": "Rules are not valid", "AlertmanagerConfig": "AlertmanagerConfig is invalid"}[kind]
	texts := make([]string, len(errs))
	for i, err := range errs {
		texts[i] = err.Error()
	}
	return fmt.Sprintf("%s: %s", head, strings.Join(texts, "; "))
}

func handler(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var review admissionv1.AdmissionReview
		if err == nil {
			err = json.Unmarshal(body, &review)
		}
		if err == nil && review.Request == nil {
			err = errors.New("AdmissionReview without a request")
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		response := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		if errs := judge(kind, review.Request.Object.Raw); len(errs) > 0 {
			message := summary(kind, errs)
			log.Printf("refused %s %s/%s: %s", kind, review.Request.Namespace, review.Request.Name, message)
			response.Allowed = false
			response.Result = &metav1.Status{
				Status: metav1.StatusFailure, Reason: metav1.StatusReasonInvalid, Code: http.StatusUnprocessableEntity, Message: message,
			}
		} else {
			log.Printf("accepted %s %s/%s", kind, review.Request.Namespace, review.Request.Name)
		}
		review.Response, review.Request = response, nil
		out, _ := json.Marshal(review)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	}
}

func serve(args []string) error {
	flags := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := flags.String("listen", "127.0.0.1:0", "address to listen on (keep it on 127.0.0.1)")
	cert := flags.String("cert", "", "serving certificate (PEM)")
	key := flags.String("key", "", "its private key (PEM)")
	_ = flags.Parse(args)
	mux := http.NewServeMux()
	mux.HandleFunc(rulesPath, handler("PrometheusRule"))
	mux.HandleFunc(routesPath, handler("AlertmanagerConfig"))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	server := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("serving %s and %s on https://%s", rulesPath, routesPath, *listen)
	return server.ListenAndServeTLS(*cert, *key)
}

func check(paths []string) int {
	refused := false
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Println(path, err)
			return 2
		}
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(data, &meta); err != nil {
			fmt.Println(path, err)
			return 2
		}
		if errs := judge(meta.Kind, data); len(errs) > 0 {
			refused = true
			fmt.Printf("%s %s REFUSED: %s\n", path, meta.Kind, summary(meta.Kind, errs))
		} else {
			fmt.Printf("%s %s accepted\n", path, meta.Kind)
		}
	}
	if refused {
		return 1
	}
	return 0
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: po-webhook serve -listen ADDR -cert FILE -key FILE | po-webhook check FILE...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		log.Fatal(serve(os.Args[2:]))
	case "check":
		os.Exit(check(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
