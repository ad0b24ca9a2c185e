// cm-platform: cert-manager for `make e2e`, out of cluster, from the served github.com/cert-manager/cert-manager
// module (upstream's controller and webhook binaries are separate modules the Go proxy does not serve).
//
// The project's own short main. e2e/toolchain.sh builds it inside a copy of the pinned module (the validation it
// serves lives in internal/ packages), so both halves are cert-manager's own code at the add-on's version:
//
//	cm-platform controller -kubeconfig FILE [-cluster-resource-namespace NS]
//	    the certificates controllers, the CertificateRequest approver and the selfSigned and CA signers, and the
//	    Issuer/ClusterIssuer controllers: what issues a selfSigned -> CA chain with no network. No ACME, no
//	    Vault/Venafi, no ingress or Gateway shims (the platform writes its Certificates itself).
//	cm-platform webhook -listen 127.0.0.1:PORT -cert FILE -key FILE
//	    cert-manager's validating admission webhook (its resource validation plugin: Certificate, Issuer,
//	    ClusterIssuer, CertificateRequest, Order, Challenge) at /validate. The approval and identity plugins,
//	    which ask the API server about the requester, are left out: the e2e's only client is system:masters.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

	acmeinstall "github.com/cert-manager/cert-manager/internal/apis/acme/install"
	cminstall "github.com/cert-manager/cert-manager/internal/apis/certmanager/install"
	metainstall "github.com/cert-manager/cert-manager/internal/apis/meta/install"
	"github.com/cert-manager/cert-manager/internal/webhook/admission/resourcevalidation"
	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/webhook/admission"

	// Each import registers its controller (controllerpkg.Register) or issuer (issuer.RegisterIssuer).
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

func controllers(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("controller", flag.ExitOnError)
	kubeconfig := flags.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the API server")
	clusterNamespace := flags.String("cluster-resource-namespace", "cert-manager", "where ClusterIssuers' Secrets live")
	_ = flags.Parse(args)
	log := logf.FromContext(ctx)

	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:    *kubeconfig,
		IssuerOptions: controllerpkg.IssuerOptions{ClusterResourceNamespace: *clusterNamespace},
		// cert-manager's own defaults (its controller flags): a failed request is retried after an hour at first.
		CertificateOptions: controllerpkg.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
	})
	if err != nil {
		return fmt.Errorf("context factory: %w", err)
	}
	// Constructors register informers on the shared factories, so all are built before the factories start.
	for name, construct := range controllerpkg.Known() {
		controller, err := construct(factory)
		if err != nil {
			return fmt.Errorf("controller %s: %w", name, err)
		}
		log.Info("starting controller", "controller", name)
		go func() {
			if err := controller.Run(2, ctx); err != nil {
				log.Error(err, "controller stopped", "controller", name)
			}
		}()
	}
	shared, err := factory.Build()
	if err != nil {
		return fmt.Errorf("controller context: %w", err)
	}
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	<-ctx.Done()
	return nil
}

// recorder keeps what the handler answers, so the verdict can be logged.
type recorder struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(data []byte) (int, error) {
	r.body.Write(data)
	return r.ResponseWriter.Write(data)
}

// logged writes one line per review (kind, object, verdict): the harness reads which objects cert-manager judged.
func logged(ctx context.Context, next http.Handler) http.Handler {
	log := logf.FromContext(ctx)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		out := &recorder{ResponseWriter: w}
		next.ServeHTTP(out, r)
		var request, response admissionv1.AdmissionReview
		if json.Unmarshal(body, &request) != nil || json.Unmarshal(out.body.Bytes(), &response) != nil || request.Request == nil || response.Response == nil {
			return
		}
		verdict, message := "accepted", ""
		if !response.Response.Allowed {
			verdict = "refused"
			if response.Response.Result != nil {
				message = response.Response.Result.Message
			}
		}
		log.Info("review", "verdict", verdict, "kind", request.Request.Kind.Kind, "object", request.Request.Namespace+"/"+request.Request.Name, "message", message)
	})
}

func webhook(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("webhook", flag.ExitOnError)
	listen := flags.String("listen", "127.0.0.1:0", "address to listen on (keep it on 127.0.0.1)")
	cert := flags.String("cert", "", "serving certificate (PEM)")
	key := flags.String("key", "", "its private key (PEM)")
	_ = flags.Parse(args)

	// The internal (hub) types cert-manager validates, and the conversions to them from the served versions.
	scheme := runtime.NewScheme()
	cminstall.Install(scheme)
	acmeinstall.Install(scheme)
	metainstall.Install(scheme)
	validation := admission.NewCustomValidationWebhook(scheme, admission.PluginChain{resourcevalidation.NewPlugin()})

	mux := http.NewServeMux()
	mux.Handle("/validate", logged(ctx, validation))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	server := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = server.Close()
	}()
	logf.FromContext(ctx).Info("serving cert-manager validation", "address", "https://"+*listen+"/validate")
	if err := server.ListenAndServeTLS(*cert, *key); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func main() {
	logf.InitLogs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, klog.Background(), "cm-platform")
	commands := map[string]func(context.Context, []string) error{"controller": controllers, "webhook": webhook}
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: cm-platform controller -kubeconfig FILE | cm-platform webhook -listen ADDR -cert FILE -key FILE")
		os.Exit(2)
	}
	if err := commands[os.Args[1]](ctx, os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "cm-platform:", err)
		os.Exit(1)
	}
}
