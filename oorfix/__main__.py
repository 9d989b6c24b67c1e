from oorfix.cli import main

main()
