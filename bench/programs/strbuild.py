# strbuild: build a string from 200,000 pieces (each the decimal form of i
# followed by ","), by collecting the pieces and joining them; repeated.
def build(n):
    parts = []
    for i in range(n):
        parts.append(f"{i},")
    return "".join(parts)

def main(rounds):
    total = 0
    for _ in range(rounds):
        total += len(build(200_000))
    return total

print(main(30))
