"""``chatsecure-admin``: a server's database, certificates, accounts and exports."""
