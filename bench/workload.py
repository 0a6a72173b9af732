"""What the benchmark asks of every target: the upstream's answers, the targets, the cost-split runs."""

# The upstream the targets are set against: 500 ms to the first token, then 50 tokens 20 ms apart.
UPSTREAM_TTFT = 0.5
UPSTREAM_TOKEN_DELAY = 0.02
UPSTREAM_TOKENS = 50
CHAT_SECONDS = UPSTREAM_TTFT + (UPSTREAM_TOKENS - 1) * UPSTREAM_TOKEN_DELAY
# The cost split: chatsite's CPU per chat with answers of 1 and of 101 tokens, at a level that leaves
# its core idle part of the time, gives its fixed cost per chat and its cost per streamed token.
SPLIT_LEVEL = 30
SPLIT_TOKENS = (1, 101)

TARGETS = ("direct", "chatsite", "prototype")
TARGET_NAMES = {
    "direct": "upstream direct",
    "chatsite": "chatsite (SSE, uvicorn)",
    "prototype": "prototype design (FastAPI def, sync openai)",
}
