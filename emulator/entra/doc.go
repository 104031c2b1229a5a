// Package entra is a local stand-in for Microsoft Entra ID
// (login.microsoftonline.com) and the parts of Microsoft Graph and the
// retired Azure AD Graph that an identity broker talks to.
//
// It is driven by a directory file (see LoadDirectory) and serves every
// endpoint from one http.Handler, so tests can run it under httptest and the
// `gatehouse entra-emulator` command can serve it on one address. Wire
// formats follow Microsoft's documentation and observed responses; the
// sources are cited next to the code that relies on them. The emulator
// imports nothing from the broker so that a misreading of Microsoft's
// documentation in one is caught by the other.
package entra
