from zixly.cli import app

app(prog_name="zixly")
