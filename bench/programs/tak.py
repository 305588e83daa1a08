# tak: the Takeuchi function (deep, call-heavy integer recursion).
def tak(x, y, z):
    if not y < x:
        return z
    return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y))

print(tak(28, 18, 9))
