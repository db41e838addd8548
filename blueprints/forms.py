"""The WTForms forms of the parent and staff pages, with French messages."""
from __future__ import annotations

from datetime import date, time

from email_validator import EmailNotValidError, validate_email
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    EmailField,
    FormField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
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

from services import direct_debit, passwords

REQUIRED = "Ce champ est obligatoire."
PHONE = Regexp(
    r"^\+?[0-9 .()-]{6,20}$",
    message="Numéro de téléphone invalide : chiffres et espaces uniquement (ex. 06 12 34 56 78).",
)


def EMAIL(form, field):
    """A syntactically valid address (email-validator); the demo's .test domain is accepted."""
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
        description="Au moins 12 caractères, difficile à deviner : une phrase de quatre mots ou plus, "
                    "facile à retenir pour vous, convient très bien.",
    )
    confirm = PasswordField(
        "Confirmez le nouveau mot de passe",
        validators=[DataRequired(REQUIRED), length(1024)],
        render_kw={"autocomplete": "new-password"},
    )

    def validate_confirm(self, field):
        if passwords.normalize(field.data or "") != passwords.normalize(self.password.data or ""):
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
    enrolment_open = BooleanField("Les familles peuvent demander une inscription en ligne (« Inscrire mon enfant »)")
    enrolment_until = DateField("Inscriptions en ligne jusqu'au", validators=[Optional()],
                                description="Vide : sans date limite.")
    enrolment_cap = IntegerField("Nombre d'enfants inscrits au plus", validators=[Optional(), NumberRange(1, 100000, "Un nombre positif.")],
                                 description="Vide : sans limite ; au-delà, les demandes attendent sur une liste, dans l'ordre.")


class UnitForm(FrenchForm):
    label = StringField("Nom de l'unité", validators=[DataRequired(REQUIRED), length(60)],
                        description="Accueil du matin, Matinée, Repas, Après-midi, Journée, Accueil du soir…")
    short_label = StringField("Nom court (colonne du planning sur téléphone)", validators=[Optional(), length(10)],
                              description="10 caractères au plus, par exemple « A.-midi » ; vide : le nom, raccourci.")
    position = IntegerField("Ordre d'affichage", default=1,
                            validators=[InputRequired(REQUIRED), NumberRange(0, 99, "Un nombre entre 0 et 99.")])
    capacity = IntegerField("Capacité (places par jour)", default=0,
                            validators=[InputRequired(REQUIRED), NumberRange(0, 100000, "La capacité est un nombre positif ou nul.")])
    starts_at = TimeField("Heure de début", validators=[Optional()],
                          description="Pour l'agenda des familles, par exemple 07:30 ; vide : toute la journée.")
    ends_at = TimeField("Heure de fin", validators=[Optional()])

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        start, end = self.starts_at.data, self.ends_at.data
        problem = None
        if bool(start) != bool(end):  # the fields' Optional() stops their own checks when one is empty
            problem = "Indiquez l'heure de début et l'heure de fin, ou aucune des deux."
        elif start and end <= start:
            problem = "L'heure de fin doit être après l'heure de début."
        if problem:
            self.ends_at.errors = [*self.ends_at.errors, problem]
        return valid and problem is None


DAYS = NumberRange(0, 365, "Un nombre de jours entre 0 et 365.")


class PeriodForm(FrenchForm):
    name = StringField("Nom de la période", validators=[DataRequired(REQUIRED), length(150)],
                       description="Par exemple « Vacances d'hiver 2027 » ou « Périscolaire 2026-2027 ».")
    start_date = DateField("Premier jour", validators=[InputRequired("Indiquez une date (jj/mm/aaaa).")])
    end_date = DateField("Dernier jour", validators=[InputRequired("Indiquez une date (jj/mm/aaaa).")])
    booking_opens_at = DateTimeLocalField("Ouverture des réservations", format="%Y-%m-%dT%H:%M",
                                          validators=[InputRequired("Indiquez la date et l'heure d'ouverture.")])
    booking_closes_at = DateTimeLocalField("Fermeture des réservations", format="%Y-%m-%dT%H:%M",
                                           validators=[InputRequired("Indiquez la date et l'heure de fermeture.")])
    auto_accept_days = IntegerField("Acceptation immédiate à partir de (jours avant)", default=8,
                                    validators=[InputRequired(REQUIRED), DAYS],
                                    description="Plus tôt : acceptée sans attendre ; plus tard : demande traitée par la structure.")
    min_days = IntegerField("Délai minimum de réservation (jours avant)", default=2, validators=[InputRequired(REQUIRED), DAYS],
                            description="Plus près que ce délai, le jour n'est plus réservable.")
    cancel_auto_days = IntegerField("Annulation acceptée d'office à partir de (jours avant)", default=8,
                                    validators=[InputRequired(REQUIRED), DAYS])
    cancel_min_days = IntegerField("Délai minimum d'annulation (jours avant)", default=2,
                                   validators=[InputRequired(REQUIRED), DAYS],
                                   description="Plus près : l'annulation n'est plus possible en ligne (absence ou jour facturé).")
    cutoff_time = TimeField("Heure limite du jour", default=time(23, 59), validators=[InputRequired("Indiquez une heure (hh:mm).")],
                            description="Après cette heure, la journée ne compte plus dans les délais.")
    working_days = RadioField("Les délais se comptent en", choices=[C("0", "jours calendaires"), C("1", "jours ouvrés (lundi à vendredi, hors jours fériés)")],
                              default="0", validators=[InputRequired(REQUIRED)])
    waitlist_auto = BooleanField("Une place libérée va d'office au premier de la liste d'attente",
                                 description="Sinon, un agent choisit à qui la proposer.")
    surcharge_percent = IntegerField("Majoration d'une présence sans réservation (%)", default=0,
                                     validators=[InputRequired(REQUIRED), NumberRange(0, 200, "Un pourcentage entre 0 et 200.")])

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        if self.start_date.data and self.end_date.data:
            if self.end_date.data < self.start_date.data:
                self.end_date.errors.append("Le dernier jour doit être après le premier jour.")
                ok = False
            elif (self.end_date.data - self.start_date.data).days > 400:
                self.end_date.errors.append("Une période dure au plus 400 jours : créez-en plusieurs.")
                ok = False
        if self.booking_opens_at.data and self.booking_closes_at.data and \
                self.booking_closes_at.data <= self.booking_opens_at.data:
            self.booking_closes_at.errors.append("La fermeture des réservations doit être après leur ouverture.")
            ok = False
        if self.booking_closes_at.data and self.end_date.data and self.booking_closes_at.data.date() > self.end_date.data:
            self.booking_closes_at.errors.append("Les réservations doivent fermer au plus tard le dernier jour de la période.")
            ok = False
        for low, high in ((self.min_days, self.auto_accept_days), (self.cancel_min_days, self.cancel_auto_days)):
            if low.data is not None and high.data is not None and low.data > high.data:
                low.errors.append(f"Ne peut pas dépasser « {high.label.text} » ({high.data} jours).")
                ok = False
        return ok


class ClosedDayForm(FrenchForm):
    day = DateField("Jour fermé", validators=[InputRequired("Indiquez une date (jj/mm/aaaa).")])
    reason = StringField("Motif affiché aux familles", default="Structure fermée",
                         validators=[DataRequired(REQUIRED), length(100)])


class DayCapacityForm(FrenchForm):
    unit = SelectField("Unité", coerce=lambda v: int(v) if str(v).isdigit() else -1, validate_choice=False, validators=[InputRequired(REQUIRED)])
    day = DateField("Jour", validators=[InputRequired("Indiquez une date (jj/mm/aaaa).")])
    capacity = IntegerField("Capacité ce jour-là", validators=[Optional(), NumberRange(0, 100000, "La capacité est un nombre positif ou nul.")],
                            description="Laissez vide pour revenir à la capacité habituelle de l'unité.")

    def validate_unit(self, field):
        if field.data not in {value for value, _ in field.choices}:
            raise ValidationError("Choisissez une unité proposée dans la période.")


class StaffAccountForm(FrenchForm):
    email = EmailField("Adresse mail (identifiant)", validators=[DataRequired(REQUIRED), length(254), EMAIL],
                       render_kw={"autocomplete": "off", "autocapitalize": "none"})
    first_name = StringField("Prénom", validators=[DataRequired(REQUIRED), length(100)])
    last_name = StringField("Nom", validators=[DataRequired(REQUIRED), length(100)])
    role = RadioField("Rôle", choices=[C("agent", "Agent : valide les dossiers et les demandes, fait les listes de présence et la facturation"),
                                       C("admin", "Administrateur : configure la commune et gère les comptes, en plus")],
                      default="agent", validators=[InputRequired(REQUIRED)])


class NewFamilyForm(FrenchForm):
    name = StringField("Nom de la famille", validators=[DataRequired(REQUIRED), length(100)],
                       description="Le nom sous lequel le service enfance range le dossier (souvent celui des enfants).")
    title = SelectField("Civilité du responsable légal 1", default="", choices=[C("", "—"), C("Mme", "Madame"), C("M.", "Monsieur")])
    last_name = StringField("Nom du responsable légal 1", validators=[DataRequired(REQUIRED), length(100)])
    first_name = StringField("Prénom du responsable légal 1", validators=[DataRequired(REQUIRED), length(100)])
    phone_mobile = StringField("Téléphone portable", validators=[Optional(), PHONE], render_kw={"inputmode": "tel"})
    email = EmailField("Adresse mail (identifiant de connexion)", validators=[DataRequired(REQUIRED), length(254), EMAIL],
                       description="Le parent y reçoit un lien pour choisir son mot de passe (valable 7 jours).",
                       render_kw={"autocomplete": "off", "autocapitalize": "none"})


def _debit_check(reader):
    """A field validator from a direct_debit reader (its French message on the field)."""
    def check(form, field):
        try:
            reader(field.data or "")
        except direct_debit.DebitError as error:
            raise ValidationError(str(error)) from None
    return check


class AccountForm(FrenchForm):
    """The account a mandate debits: its holder and IBAN (checked with schwifty)."""

    holder = StringField("Titulaire du compte", validators=[_debit_check(direct_debit.read_holder)],
                         description="Nom et prénom tels qu'ils figurent sur le RIB.",
                         render_kw={"autocomplete": "name", "maxlength": 70})
    iban = StringField("IBAN", validators=[_debit_check(direct_debit.read_iban)],
                       description="27 caractères pour un compte en France, par exemple FR76 3000 6000 0112 3456 7890 189.",
                       render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters",
                                  "maxlength": 50})


class MandateForm(AccountForm):
    consent = BooleanField("J'accepte le mandat de prélèvement SEPA ci-dessus",
                           validators=[DataRequired("Cochez cette case pour signer le mandat.")])


class PaperMandateForm(AccountForm):
    signed_on = DateField("Date de signature du mandat papier", validators=[InputRequired(REQUIRED)])
