from genedge.cli import main

main()
