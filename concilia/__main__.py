from concilia.cli import main

main()
