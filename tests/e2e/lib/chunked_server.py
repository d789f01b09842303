# HTTP/1.1 server answering GET /chunked with a chunked body of 100 + 2000 + 5
# bytes (keep-alive), GET /slow after 1.2 s with "slow", anything else 404
# with Content-Length.
import http.server, sys, time

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for n in (100, 2000, 5):
                self.wfile.write(b"%x\r\n%s\r\n" % (n, b"c" * n))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/slow":
            time.sleep(1.2)
            body = b"slow"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            body = b"no"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
