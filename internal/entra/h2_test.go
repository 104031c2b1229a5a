package entra

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// h2ResetServer speaks just enough cleartext HTTP/2 (prior knowledge) to
// read a request to its end and then reset its stream with PROTOCOL_ERROR,
// as a front end may do after it has passed the request on. It counts the
// request bodies that carried the password.
func h2ResetServer(t *testing.T, password string) (addr string, received *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	received = new(atomic.Int32)
	frame := func(typ, flags byte, stream uint32, payload []byte) []byte {
		b := make([]byte, 9, 9+len(payload))
		b[0], b[1], b[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
		b[3], b[4] = typ, flags
		binary.BigEndian.PutUint32(b[5:], stream)
		return append(b, payload...)
	}
	serve := func(c net.Conn) {
		defer c.Close()
		preface := make([]byte, 24)
		if _, err := io.ReadFull(c, preface); err != nil {
			return
		}
		c.Write(frame(0x4, 0, 0, nil)) // SETTINGS
		bodies := map[uint32][]byte{}
		hdr := make([]byte, 9)
		for {
			if _, err := io.ReadFull(c, hdr); err != nil {
				return
			}
			n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
			typ, flags, stream := hdr[3], hdr[4], binary.BigEndian.Uint32(hdr[5:])&0x7fffffff
			payload := make([]byte, n)
			if _, err := io.ReadFull(c, payload); err != nil {
				return
			}
			switch {
			case typ == 0x4 && flags&0x1 == 0: // SETTINGS: acknowledge
				c.Write(frame(0x4, 0x1, 0, nil))
			case typ == 0x6 && flags&0x1 == 0: // PING: answer
				c.Write(frame(0x6, 0x1, 0, payload))
			case typ == 0x0: // DATA
				bodies[stream] = append(bodies[stream], payload...)
				if flags&0x1 != 0 { // END_STREAM: the whole request is here
					if bytes.Contains(bodies[stream], []byte(password)) {
						received.Add(1)
					}
					code := make([]byte, 4)
					binary.BigEndian.PutUint32(code, 0x1) // PROTOCOL_ERROR
					c.Write(frame(0x3, 0, stream, code))
				}
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String(), received
}

// TestPasswordTokenNotResentOverHTTP2: Go's HTTP/2 transport replays a
// request whose stream the server reset with PROTOCOL_ERROR, even after the
// server read all of it, whenever it can rewind the body. The password
// reached Entra once; it must not be sent again.
func TestPasswordTokenNotResentOverHTTP2(t *testing.T) {
	addr, received := h2ResetServer(t, url.Values{"password": {secretPassword}}.Encode())
	tr := NewTransport()
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	c := NewClient(Options{Transport: tr, Timeout: 5 * time.Second})
	_, err := c.PasswordToken(context.Background(), PasswordRequest{Endpoint: Endpoint{Authority: "http://" + addr, Tenant: "t", Version: V2},
		ClientID: "c", Username: "u", Password: secretPassword})
	if !errors.Is(err, ClassUnavailable) {
		t.Fatalf("got %v", err)
	}
	if n := received.Load(); n != 1 {
		t.Fatalf("credentials sent %d times", n)
	}
}
