package groupcachepeer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	pb "github.com/golang/groupcache/groupcachepb"
	"github.com/golang/protobuf/proto"
)

// Fetcher is a groupcache peer client: Get does what groupcache's unexported
// httpGetter.Get (http.go) does, line for line, so that its cost is the
// client-side cost of an HTTPPool peer fetch.
type Fetcher struct {
	transport  http.RoundTripper
	group      string    // addressable, as Group.getFromPeer's &g.name
	bufferPool sync.Pool // of *bytes.Buffer, as groupcache's package-level bufferPool
}

// NewFetcher returns a Fetcher for the bench group over transport; nil
// means http.DefaultTransport, as httpGetter uses when HTTPPool.Transport
// is nil.
func NewFetcher(transport http.RoundTripper) *Fetcher {
	if transport == nil {
		transport = http.DefaultTransport
	}
	return &Fetcher{transport: transport, group: Group}
}

// Get fetches group/key from the peer at baseURL (e.g.
// "http://127.0.0.1:8001") and decodes the response into out.
func (f *Fetcher) Get(ctx context.Context, baseURL string, in *pb.GetRequest, out *pb.GetResponse) error {
	u := fmt.Sprintf(
		"%v%v/%v",
		baseURL+"/_groupcache/", // httpGetter.baseURL: peer + opts.BasePath
		url.QueryEscape(in.GetGroup()),
		url.QueryEscape(in.GetKey()),
	)
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return err
	}
	req = req.WithContext(ctx)
	res, err := f.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("server returned: %v", res.Status)
	}
	b, _ := f.bufferPool.Get().(*bytes.Buffer)
	if b == nil {
		b = new(bytes.Buffer)
	}
	b.Reset()
	defer f.bufferPool.Put(b)
	_, err = io.Copy(b, res.Body)
	if err != nil {
		return fmt.Errorf("reading response body: %v", err)
	}
	err = proto.Unmarshal(b.Bytes(), out)
	if err != nil {
		return fmt.Errorf("decoding response body: %v", err)
	}
	return nil
}

// Value fetches key of the bench group from the peer at baseURL and returns
// its value: the request and response handling of groupcache's
// Group.getFromPeer around [Fetcher.Get].
func (f *Fetcher) Value(ctx context.Context, baseURL, key string) ([]byte, error) {
	req := &pb.GetRequest{Group: &f.group, Key: &key}
	res := &pb.GetResponse{}
	if err := f.Get(ctx, baseURL, req, res); err != nil {
		return nil, err
	}
	return res.Value, nil
}
