    if x:
  z()
