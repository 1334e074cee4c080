"""The web page (dreamtext serve): the server, its edit service and the upload/box parsing."""
