"""The WTForms forms of the parent and staff pages, with French messages."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    FormField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms import Form as SubForm
from wtforms import SelectChoice as C
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

REQUIRED = "Ce champ est obligatoire."
PHONE = Regexp(
    r"^\+?[0-9 .()-]{6,20}$",
    message="Numéro de téléphone invalide : chiffres et espaces uniquement (ex. 06 12 34 56 78).",
)


def EMAIL(form, field):
    """A syntactically valid address (email-validator); the demo's .test domain is accepted."""
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(field.data or "", check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        raise ValidationError("Adresse mail invalide (exemple : prenom.nom@exemple.fr).") from None


def length(maximum: int, minimum: int = -1):
    return Length(min=minimum, max=maximum, message=f"{maximum} caractères au maximum.")


class FrenchForm(FlaskForm):
    class Meta:
        locales = ["fr_FR", "fr"]


class LoginForm(FrenchForm):
    email = StringField(
        "Identifiant (adresse mail)",
        validators=[DataRequired(REQUIRED), length(254)],
        render_kw={"autocomplete": "username", "inputmode": "email", "autocapitalize": "none"},
    )
    password = PasswordField(
        "Mot de passe",
        validators=[DataRequired(REQUIRED), length(1024)],
        render_kw={"autocomplete": "current-password"},
    )


class ForgotForm(FrenchForm):
    email = EmailField(
        "Adresse mail",
        validators=[DataRequired(REQUIRED), length(254), EMAIL],
        render_kw={"autocomplete": "email"},
    )


class NewPasswordForm(FrenchForm):
    password = PasswordField(
        "Nouveau mot de passe",
        validators=[DataRequired(REQUIRED), length(1024)],
        render_kw={"autocomplete": "new-password"},
        description="Au moins 12 caractères. Une phrase facile à retenir convient très bien.",
    )
    confirm = PasswordField(
        "Confirmez le nouveau mot de passe",
        validators=[DataRequired(REQUIRED), length(1024)],
        render_kw={"autocomplete": "new-password"},
    )

    def validate_confirm(self, field):
        if field.data != self.password.data:
            raise ValidationError("Les deux mots de passe ne sont pas identiques.")


class ChangePasswordForm(NewPasswordForm):
    current = PasswordField(
        "Mot de passe actuel",
        validators=[DataRequired(REQUIRED), length(1024)],
        render_kw={"autocomplete": "current-password"},
    )

    field_order = ("current", "password", "confirm")

    def __iter__(self):
        ordered = [self._fields[name] for name in self.field_order]
        return iter(ordered + [f for n, f in self._fields.items() if n not in self.field_order])


class ChangeLoginForm(FrenchForm):
    email = EmailField(
        "Nouvelle adresse mail",
        validators=[DataRequired(REQUIRED), length(254), EMAIL],
        render_kw={"autocomplete": "email"},
    )
    current = PasswordField(
        "Mot de passe actuel",
        validators=[DataRequired(REQUIRED), length(1024)],
        render_kw={"autocomplete": "current-password"},
        description="Pour confirmer que c'est bien vous.",
    )


class GuardianForm(SubForm):
    class Meta:
        locales = ["fr_FR", "fr"]

    title = SelectField("Civilité", choices=[C("", "—"), C("Mme", "Madame"), C("M.", "Monsieur")])
    last_name = StringField("Nom", validators=[length(100)], render_kw={"autocomplete": "family-name"})
    first_name = StringField("Prénom", validators=[length(100)], render_kw={"autocomplete": "given-name"})
    relationship = StringField("Lien avec l'enfant", validators=[length(50)], description="Mère, père, tuteur…")
    phone_mobile = StringField("Téléphone portable", validators=[Optional(), PHONE], render_kw={"autocomplete": "tel", "inputmode": "tel"})
    phone_work = StringField("Téléphone professionnel", validators=[Optional(), PHONE], render_kw={"inputmode": "tel"})
    email = EmailField("Adresse mail", validators=[Optional(), length(254), EMAIL])
    employer = StringField("Employeur", validators=[length(100)])

    def is_empty(self) -> bool:
        return not any((f.data or "").strip() for f in self)


class FamilyForm(FrenchForm):
    address_line = StringField("Adresse", validators=[DataRequired(REQUIRED), length(200)], render_kw={"autocomplete": "address-line1"})
    address_extra = StringField("Complément d'adresse", validators=[length(200)], render_kw={"autocomplete": "address-line2"})
    postcode = StringField(
        "Code postal",
        validators=[DataRequired(REQUIRED), Regexp(r"^\d{5}$", message="Le code postal compte 5 chiffres.")],
        render_kw={"autocomplete": "postal-code", "inputmode": "numeric"},
    )
    city = StringField("Commune", validators=[DataRequired(REQUIRED), length(100)], render_kw={"autocomplete": "address-level2"})
    phone_home = StringField("Téléphone du domicile", validators=[Optional(), PHONE], render_kw={"inputmode": "tel"})
    qf = IntegerField(
        "Quotient familial (en euros)",
        validators=[Optional(), NumberRange(0, 99999, "Le quotient familial est un nombre entre 0 et 99 999.")],
        description="Indiqué sur votre attestation CAF ou MSA.",
        render_kw={"inputmode": "numeric"},
    )
    qf_valid_until = DateField("Quotient familial valable jusqu'au", validators=[Optional()], format="%Y-%m-%d")
    allowance_scheme = SelectField("Régime", choices=[C("", "Aucun"), C("CAF", "CAF"), C("MSA", "MSA")])
    allowance_number = StringField(
        "Numéro d'allocataire",
        validators=[Optional(), Regexp(r"^[0-9A-Za-z]{4,20}$", message="Le numéro d'allocataire compte de 4 à 20 chiffres ou lettres.")],
    )
    payer_position = RadioField(
        "Responsable payeur",
        choices=[C("1", "Responsable légal 1"), C("2", "Responsable légal 2")],
        default="1",
        validators=[InputRequired(REQUIRED)],
    )
    guardian1 = FormField(GuardianForm, label="Responsable légal 1")
    guardian2 = FormField(GuardianForm, label="Responsable légal 2 (facultatif)")

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        for sub, required in ((self.guardian1.form, True), (self.guardian2.form, False)):
            if required or not sub.is_empty():
                for name in ("last_name", "first_name"):
                    if not (sub[name].data or "").strip():
                        sub[name].errors = list(sub[name].errors) + [REQUIRED]
                        ok = False
        if self.payer_position.data == "2" and self.guardian2.form.is_empty():
            self.payer_position.errors = list(self.payer_position.errors) + [
                "Le responsable légal 2 n'est pas renseigné."
            ]
            ok = False
        if self.qf.data is not None and not self.qf_valid_until.data:
            self.qf_valid_until.errors = list(self.qf_valid_until.errors) + [
                "Indiquez jusqu'à quand le quotient familial est valable."
            ]
            ok = False
        return ok


class ChildForm(FrenchForm):
    last_name = StringField("Nom", validators=[DataRequired(REQUIRED), length(100)])
    first_name = StringField("Prénom", validators=[DataRequired(REQUIRED), length(100)])
    birth_date = DateField(
        "Date de naissance",
        validators=[InputRequired(REQUIRED)],
        format="%Y-%m-%d",
    )
    sex = RadioField("Sexe", choices=[C("F", "Fille"), C("M", "Garçon"), C("", "Non précisé")], default="", validators=[Optional()])
    school = StringField("École", validators=[length(100)])
    school_class = StringField("Classe", validators=[length(30)], description="Par exemple CP, CE1, MS.")
    allergies = TextAreaField("Allergies", validators=[length(1000)], description="Alimentaires, médicamenteuses… Laissez vide s'il n'y en a pas.")
    has_pai = BooleanField("Mon enfant a un PAI (projet d'accueil individualisé)")
    pai_details = TextAreaField("Détails du PAI", validators=[length(1000)])
    medical_notes = TextAreaField("Informations médicales utiles", validators=[length(2000)], description="Traitement, asthme, lunettes…")
    doctor_name = StringField("Médecin traitant", validators=[length(100)])
    doctor_phone = StringField("Téléphone du médecin", validators=[Optional(), PHONE], render_kw={"inputmode": "tel"})
    pickup_persons = TextAreaField(
        "Personnes autorisées à venir chercher l'enfant",
        validators=[length(2000)],
        description="Une personne par ligne : nom, prénom, lien et téléphone.",
    )
    image_rights = BooleanField("J'autorise la prise et la diffusion de photos de mon enfant (droit à l'image)")

    def validate_birth_date(self, field):
        from datetime import date

        if field.data and (field.data > date.today() or field.data.year < date.today().year - 25):
            raise ValidationError("Date de naissance invalide.")


class DecisionForm(FrenchForm):
    message = TextAreaField(
        "Message au parent",
        validators=[length(2000)],
        description="Obligatoire en cas de refus : expliquez ce qui manque ou ce qu'il faut corriger.",
    )


def strip_all(form) -> None:
    """Trim spaces around every text value, so ' Dupont ' is stored as 'Dupont'."""
    for field in form:
        if isinstance(field, FormField):
            strip_all(field.form)
        elif isinstance(field.data, str) and field.type not in ("PasswordField",):
            field.data = field.data.strip()



class EstablishmentForm(FrenchForm):
    name = StringField("Nom", validators=[DataRequired(REQUIRED), length(150)],
                       description="Par exemple « Accueil de loisirs Les Lutins ».")
    kind = RadioField("Type", choices=[C("loisirs", "Accueil de loisirs"), C("periscolaire", "Périscolaire")],
                      default="loisirs", validators=[InputRequired(REQUIRED)])
    address = StringField("Adresse", validators=[length(300)])
    phone = StringField("Téléphone", validators=[Optional(), PHONE])
    email = EmailField("Adresse mail", validators=[Optional(), length(254), EMAIL])


class UnitForm(FrenchForm):
    label = StringField("Nom de l'unité", validators=[DataRequired(REQUIRED), length(60)],
                        description="Accueil du matin, Matinée, Repas, Après-midi, Journée, Accueil du soir…")
    position = IntegerField("Ordre d'affichage", default=1,
                            validators=[InputRequired(REQUIRED), NumberRange(0, 99, "Un nombre entre 0 et 99.")])
    capacity = IntegerField("Capacité (places par jour)", default=0,
                            validators=[InputRequired(REQUIRED), NumberRange(0, 100000, "La capacité est un nombre positif ou nul.")])
