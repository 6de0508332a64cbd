fn one() {
    11
}

fn two() {
    22
}
