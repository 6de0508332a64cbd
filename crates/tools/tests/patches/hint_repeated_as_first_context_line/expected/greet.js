function greet(name) {
  return `Hello, ${name}!`;
}

function bye(name) {
  return "Bye, " + name;
}
