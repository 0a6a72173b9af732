"""A minimal re-creation of the prototype's design, the baseline the benchmark compares chatsite with.

A FastAPI `def` endpoint (so it runs in Starlette's thread pool) that calls the sync `openai` client
without streaming and returns the whole answer at once. Serve it with
`uvicorn bench.prototype_app:app`; it reads OPENAI_BASE_URL and OPENAI_API_KEY like chatsite does.
"""

import os

import openai
from fastapi import FastAPI
from pydantic import BaseModel

client = openai.OpenAI(
    base_url=os.environ["OPENAI_BASE_URL"],
    api_key=os.environ.get("OPENAI_API_KEY", "not-needed"),
    timeout=float(os.environ.get("OPENAI_TIMEOUT", "60")),
    max_retries=0,
)
app = FastAPI()


class ChatRequest(BaseModel):
    content: str


@app.post("/chat")
def chat(request: ChatRequest):
    completion = client.chat.completions.create(
        model=os.environ.get("OPENAI_MODEL", "fake-model"),
        messages=[{"role": "user", "content": request.content}],
    )
    return {"answer": completion.choices[0].message.content}
