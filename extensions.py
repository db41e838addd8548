"""The Flask extensions, made once here and bound to the app in create_app: services and blueprints
import them from this module, never from app.py."""
from flask_login import LoginManager
from flask_mail import Mail
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
mail = Mail()
csrf = CSRFProtect()
