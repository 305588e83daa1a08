# wordcount: generate a deterministic text of N words ("w" + (i*7919 mod 5000)),
# split it on spaces, count word frequencies in a dict; print the number of
# distinct words and the largest count.
def main(n):
    text = " ".join(["w" + str(i * 7919 % 5000) for i in range(n)])
    counts = {}
    for w in text.split(" "):
        counts[w] = counts.get(w, 0) + 1
    return len(counts), max(counts.values())

distinct, most = main(2_000_000)
print(f"({distinct} {most})")
