// An independent reader and writer of signed notes (golang.org/x/mod/sumdb/note), used
// by test_go_note.py to check comply_lab's checkpoints both ways.
//
//	note_tool open VKEY FILE   print the text of the note in FILE if VKEY signed it
//	note_tool sign NAME FILE   sign the text in FILE with a new key; print vkey and note
package main

import (
	"crypto/rand"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 4 {
		fail(fmt.Errorf("usage: note_tool open VKEY FILE | sign NAME FILE"))
	}
	data, err := os.ReadFile(os.Args[3])
	if err != nil {
		fail(err)
	}
	switch os.Args[1] {
	case "open":
		verifier, err := note.NewVerifier(os.Args[2])
		if err != nil {
			fail(err)
		}
		n, err := note.Open(data, note.VerifierList(verifier))
		if err != nil {
			fail(err)
		}
		fmt.Print(n.Text)
		for _, s := range n.Sigs {
			fmt.Printf("signed by %s %08x\n", s.Name, s.Hash)
		}
	case "sign":
		skey, vkey, err := note.GenerateKey(rand.Reader, os.Args[2])
		if err != nil {
			fail(err)
		}
		signer, err := note.NewSigner(skey)
		if err != nil {
			fail(err)
		}
		signed, err := note.Sign(&note.Note{Text: string(data)}, signer)
		if err != nil {
			fail(err)
		}
		fmt.Println(vkey)
		fmt.Print(string(signed))
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}
