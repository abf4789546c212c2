//! The pages' words, one table per language: English, Spanish, French, Portuguese and
//! Vietnamese (the languages of the co-operatives and buyers lotline serves). A request gets the
//! language its `?lang=` names, else the best of its `Accept-Language` (RFC 9110 §12.5.4: the
//! highest weight, then the order written), else English. A `{n}` in a text is a number filled in.

/// Every text a page shows.
pub(crate) struct Text {
    /// The language's tag and its own name.
    pub code: &'static str,
    pub name: &'static str,
    pub lot_title: &'static str,
    pub product: &'static str,
    pub lot: &'static str,
    pub gtin: &'static str,
    pub chain: &'static str,
    pub produced: &'static str,
    pub custody: &'static str,
    pub journey: &'static str,
    pub stage_missing: &'static str,
    pub stage_events: &'static str,
    pub stage_orgs: &'static str,
    pub show_each: &'static str,
    pub certificates: &'static str,
    pub no_certificate: &'static str,
    pub valid_to: &'static str,
    pub self_declared: &'static str,
    pub lapsed: &'static str,
    pub origins: &'static str,
    pub map_label: &'static str,
    pub map_countries: &'static str,
    pub map_attribution: &'static str,
    pub map_none: &'static str,
    pub geometry_rounded: &'static str,
    pub geometry_region: &'static str,
    pub shares: &'static str,
    pub co_op: &'static str,
    pub country: &'static str,
    pub share: &'static str,
    pub plots: &'static str,
    pub no_co_op: &'static str,
    pub unknown: &'static str,
    pub eudr: &'static str,
    pub traceable: &'static str,
    pub not_traceable: &'static str,
    pub not_applicable: &'static str,
    pub reasons: &'static str,
    pub questions: &'static str,
    pub partial: &'static str,
    pub verify: &'static str,
    pub verify_intro: &'static str,
    pub verify_tree: &'static str,
    pub verify_events: &'static str,
    pub proof: &'static str,
    pub verify_how: &'static str,
    pub rfc6962: &'static str,
    pub json: &'static str,
    pub not_found: &'static str,
    pub not_found_text: &'static str,
    pub bad_request: &'static str,
    pub unavailable: &'static str,
    pub product_title: &'static str,
    pub product_none: &'static str,
    pub product_more: &'static str,
    pub languages: &'static str,
}

/// The languages, English first (the fallback).
pub(crate) const LANGUAGES: [&Text; 5] = [&EN, &ES, &FR, &PT, &VI];

const EN: Text = Text {
    code: "en",
    name: "English",
    lot_title: "Where this lot comes from",
    product: "Product",
    lot: "Lot",
    gtin: "GTIN",
    chain: "Supply chain",
    produced: "Quantity produced",
    custody: "Custody model",
    journey: "The chain, stage by stage",
    stage_missing: "No event is recorded for this stage.",
    stage_events: "{n} events",
    stage_orgs: "{n} organisations",
    show_each: "Show each",
    certificates: "Certificates valid on the day",
    no_certificate: "none recorded",
    valid_to: "valid to",
    self_declared: "self-declared",
    lapsed: "lapsed",
    origins: "Origins",
    map_label: "Map of {n} origin plots",
    map_countries: "Countries",
    map_attribution: "Country outlines © OpenStreetMap contributors (ODbL).",
    map_none: "No plot location can be shown.",
    geometry_rounded: "Plot locations are rounded to about 1 km.",
    geometry_region: "Plot locations are shown only as their country.",
    shares: "Share of the lot by co-operative and country",
    co_op: "Co-operative",
    country: "Country",
    share: "Share",
    plots: "Plots",
    no_co_op: "no member co-operative recorded",
    unknown: "unknown",
    eudr: "EU Deforestation Regulation (EUDR)",
    traceable: "Traceable to its plots of land",
    not_traceable: "Not traceable to its plots of land",
    not_applicable: "Not an EUDR commodity",
    reasons: "Why",
    questions: "Open questions in the record: {n}",
    partial: "The trace stopped early; some origins are not shown.",
    verify: "Verify this",
    verify_intro: "Every event shown here is in lotline's tamper-evident log. This is the log's signed checkpoint:",
    verify_tree: "Tree size",
    verify_events: "The events shown, each with its inclusion proof:",
    proof: "inclusion proof",
    verify_how: "Check a proof against the checkpoint with the lotline command line, or with any RFC 6962 tool:",
    rfc6962: "RFC 6962, Certificate Transparency (Merkle tree proofs)",
    json: "This answer as JSON",
    not_found: "Lot not found",
    not_found_text: "This lot is not in the record.",
    bad_request: "This link is not valid",
    unavailable: "This server does not publish lots to the public.",
    product_title: "Lots of this product",
    product_none: "No lot of this product is in the record.",
    product_more: "More lots exist than are listed here.",
    languages: "Language",
};

const ES: Text = Text {
    code: "es",
    name: "Español",
    lot_title: "De dónde viene este lote",
    product: "Producto",
    lot: "Lote",
    gtin: "GTIN",
    chain: "Cadena de suministro",
    produced: "Cantidad producida",
    custody: "Modelo de custodia",
    journey: "La cadena, etapa por etapa",
    stage_missing: "No hay ningún evento registrado para esta etapa.",
    stage_events: "{n} eventos",
    stage_orgs: "{n} organizaciones",
    show_each: "Mostrar cada uno",
    certificates: "Certificados válidos ese día",
    no_certificate: "ninguno registrado",
    valid_to: "válido hasta",
    self_declared: "autodeclarado",
    lapsed: "vencido",
    origins: "Orígenes",
    map_label: "Mapa de {n} parcelas de origen",
    map_countries: "Países",
    map_attribution: "Contornos de países © colaboradores de OpenStreetMap (ODbL).",
    map_none: "No se puede mostrar la ubicación de ninguna parcela.",
    geometry_rounded: "Las ubicaciones de las parcelas están redondeadas a aproximadamente 1 km.",
    geometry_region: "Las parcelas se muestran solo por su país.",
    shares: "Participación en el lote por cooperativa y país",
    co_op: "Cooperativa",
    country: "País",
    share: "Participación",
    plots: "Parcelas",
    no_co_op: "sin cooperativa de afiliación registrada",
    unknown: "desconocido",
    eudr: "Reglamento de la UE sobre deforestación (EUDR)",
    traceable: "Trazable hasta sus parcelas",
    not_traceable: "No trazable hasta sus parcelas",
    not_applicable: "No es una materia prima del EUDR",
    reasons: "Por qué",
    questions: "Preguntas abiertas en el registro: {n}",
    partial: "El rastreo se detuvo antes; no se muestran todos los orígenes.",
    verify: "Verifíquelo",
    verify_intro: "Cada evento mostrado está en el registro a prueba de manipulaciones de lotline. Este es su punto de control firmado:",
    verify_tree: "Tamaño del árbol",
    verify_events: "Los eventos mostrados, cada uno con su prueba de inclusión:",
    proof: "prueba de inclusión",
    verify_how: "Compruebe una prueba contra el punto de control con la línea de comandos de lotline o con cualquier herramienta RFC 6962:",
    rfc6962: "RFC 6962, Certificate Transparency (pruebas de árbol de Merkle)",
    json: "Esta respuesta en JSON",
    not_found: "Lote no encontrado",
    not_found_text: "Este lote no está en el registro.",
    bad_request: "Este enlace no es válido",
    unavailable: "Este servidor no publica lotes al público.",
    product_title: "Lotes de este producto",
    product_none: "Ningún lote de este producto está en el registro.",
    product_more: "Hay más lotes de los que se muestran aquí.",
    languages: "Idioma",
};

const FR: Text = Text {
    code: "fr",
    name: "Français",
    lot_title: "D'où vient ce lot",
    product: "Produit",
    lot: "Lot",
    gtin: "GTIN",
    chain: "Filière",
    produced: "Quantité produite",
    custody: "Modèle de traçabilité",
    journey: "La filière, étape par étape",
    stage_missing: "Aucun événement n'est enregistré pour cette étape.",
    stage_events: "{n} événements",
    stage_orgs: "{n} organisations",
    show_each: "Afficher le détail",
    certificates: "Certificats valides ce jour-là",
    no_certificate: "aucun enregistré",
    valid_to: "valide jusqu'au",
    self_declared: "auto-déclaré",
    lapsed: "expiré",
    origins: "Origines",
    map_label: "Carte de {n} parcelles d'origine",
    map_countries: "Pays",
    map_attribution: "Contours des pays © contributeurs d'OpenStreetMap (ODbL).",
    map_none: "Aucun emplacement de parcelle ne peut être affiché.",
    geometry_rounded: "Les emplacements des parcelles sont arrondis à environ 1 km.",
    geometry_region: "Les parcelles ne sont indiquées que par leur pays.",
    shares: "Part du lot par coopérative et par pays",
    co_op: "Coopérative",
    country: "Pays",
    share: "Part",
    plots: "Parcelles",
    no_co_op: "aucune coopérative d'adhésion enregistrée",
    unknown: "inconnu",
    eudr: "Règlement de l'UE sur la déforestation (RDUE)",
    traceable: "Traçable jusqu'à ses parcelles",
    not_traceable: "Non traçable jusqu'à ses parcelles",
    not_applicable: "Hors des produits du RDUE",
    reasons: "Pourquoi",
    questions: "Questions ouvertes dans le registre : {n}",
    partial: "La traçabilité s'est arrêtée avant la fin ; certaines origines ne sont pas affichées.",
    verify: "Vérifiez-le",
    verify_intro: "Chaque événement affiché figure dans le journal infalsifiable de lotline. Voici son point de contrôle signé :",
    verify_tree: "Taille de l'arbre",
    verify_events: "Les événements affichés, chacun avec sa preuve d'inclusion :",
    proof: "preuve d'inclusion",
    verify_how: "Vérifiez une preuve par rapport au point de contrôle avec la ligne de commande lotline, ou avec tout outil RFC 6962 :",
    rfc6962: "RFC 6962, Certificate Transparency (preuves d'arbre de Merkle)",
    json: "Cette réponse en JSON",
    not_found: "Lot introuvable",
    not_found_text: "Ce lot n'est pas dans le registre.",
    bad_request: "Ce lien n'est pas valide",
    unavailable: "Ce serveur ne publie pas les lots au public.",
    product_title: "Lots de ce produit",
    product_none: "Aucun lot de ce produit n'est dans le registre.",
    product_more: "Il existe plus de lots que ceux listés ici.",
    languages: "Langue",
};

const PT: Text = Text {
    code: "pt",
    name: "Português",
    lot_title: "De onde vem este lote",
    product: "Produto",
    lot: "Lote",
    gtin: "GTIN",
    chain: "Cadeia de abastecimento",
    produced: "Quantidade produzida",
    custody: "Modelo de custódia",
    journey: "A cadeia, etapa por etapa",
    stage_missing: "Nenhum evento registado para esta etapa.",
    stage_events: "{n} eventos",
    stage_orgs: "{n} organizações",
    show_each: "Mostrar cada um",
    certificates: "Certificados válidos no dia",
    no_certificate: "nenhum registado",
    valid_to: "válido até",
    self_declared: "autodeclarado",
    lapsed: "expirado",
    origins: "Origens",
    map_label: "Mapa de {n} parcelas de origem",
    map_countries: "Países",
    map_attribution: "Contornos dos países © colaboradores do OpenStreetMap (ODbL).",
    map_none: "Não é possível mostrar a localização de nenhuma parcela.",
    geometry_rounded: "As localizações das parcelas estão arredondadas a cerca de 1 km.",
    geometry_region: "As parcelas são mostradas apenas pelo seu país.",
    shares: "Participação no lote por cooperativa e país",
    co_op: "Cooperativa",
    country: "País",
    share: "Participação",
    plots: "Parcelas",
    no_co_op: "nenhuma cooperativa de filiação registada",
    unknown: "desconhecido",
    eudr: "Regulamento da UE sobre desflorestação (EUDR)",
    traceable: "Rastreável até às suas parcelas",
    not_traceable: "Não rastreável até às suas parcelas",
    not_applicable: "Não é uma mercadoria do EUDR",
    reasons: "Porquê",
    questions: "Questões em aberto no registo: {n}",
    partial: "O rastreio parou antes do fim; algumas origens não são mostradas.",
    verify: "Verifique",
    verify_intro: "Cada evento mostrado está no registo inviolável do lotline. Este é o seu ponto de verificação assinado:",
    verify_tree: "Tamanho da árvore",
    verify_events: "Os eventos mostrados, cada um com a sua prova de inclusão:",
    proof: "prova de inclusão",
    verify_how: "Verifique uma prova contra o ponto de verificação com a linha de comandos do lotline ou com qualquer ferramenta RFC 6962:",
    rfc6962: "RFC 6962, Certificate Transparency (provas de árvore de Merkle)",
    json: "Esta resposta em JSON",
    not_found: "Lote não encontrado",
    not_found_text: "Este lote não está no registo.",
    bad_request: "Esta ligação não é válida",
    unavailable: "Este servidor não publica lotes ao público.",
    product_title: "Lotes deste produto",
    product_none: "Nenhum lote deste produto está no registo.",
    product_more: "Existem mais lotes do que os listados aqui.",
    languages: "Idioma",
};

const VI: Text = Text {
    code: "vi",
    name: "Tiếng Việt",
    lot_title: "Lô hàng này đến từ đâu",
    product: "Sản phẩm",
    lot: "Lô",
    gtin: "GTIN",
    chain: "Chuỗi cung ứng",
    produced: "Sản lượng",
    custody: "Mô hình chuỗi hành trình",
    journey: "Chuỗi cung ứng, từng công đoạn",
    stage_missing: "Không có sự kiện nào được ghi cho công đoạn này.",
    stage_events: "{n} sự kiện",
    stage_orgs: "{n} tổ chức",
    show_each: "Xem chi tiết",
    certificates: "Chứng nhận còn hiệu lực vào ngày đó",
    no_certificate: "không có",
    valid_to: "hiệu lực đến",
    self_declared: "tự công bố",
    lapsed: "đã hết hạn",
    origins: "Nguồn gốc",
    map_label: "Bản đồ {n} lô đất nguồn gốc",
    map_countries: "Quốc gia",
    map_attribution: "Đường biên quốc gia © những người đóng góp OpenStreetMap (ODbL).",
    map_none: "Không thể hiển thị vị trí lô đất nào.",
    geometry_rounded: "Vị trí lô đất được làm tròn đến khoảng 1 km.",
    geometry_region: "Lô đất chỉ được hiển thị theo quốc gia.",
    shares: "Tỷ lệ của lô hàng theo hợp tác xã và quốc gia",
    co_op: "Hợp tác xã",
    country: "Quốc gia",
    share: "Tỷ lệ",
    plots: "Lô đất",
    no_co_op: "chưa ghi nhận hợp tác xã thành viên",
    unknown: "không rõ",
    eudr: "Quy định chống phá rừng của EU (EUDR)",
    traceable: "Truy xuất được đến từng lô đất",
    not_traceable: "Không truy xuất được đến từng lô đất",
    not_applicable: "Không thuộc mặt hàng của EUDR",
    reasons: "Lý do",
    questions: "Câu hỏi còn mở trong hồ sơ: {n}",
    partial: "Việc truy xuất dừng sớm; một số nguồn gốc không được hiển thị.",
    verify: "Tự kiểm chứng",
    verify_intro: "Mọi sự kiện hiển thị ở đây đều nằm trong nhật ký chống giả mạo của lotline. Đây là điểm kiểm tra đã ký của nhật ký:",
    verify_tree: "Kích thước cây",
    verify_events: "Các sự kiện hiển thị, mỗi sự kiện kèm bằng chứng bao hàm:",
    proof: "bằng chứng bao hàm",
    verify_how: "Kiểm tra một bằng chứng với điểm kiểm tra bằng dòng lệnh lotline, hoặc bất kỳ công cụ RFC 6962 nào:",
    rfc6962: "RFC 6962, Certificate Transparency (bằng chứng cây Merkle)",
    json: "Câu trả lời này dưới dạng JSON",
    not_found: "Không tìm thấy lô hàng",
    not_found_text: "Lô hàng này không có trong hồ sơ.",
    bad_request: "Liên kết này không hợp lệ",
    unavailable: "Máy chủ này không công bố lô hàng cho công chúng.",
    product_title: "Các lô của sản phẩm này",
    product_none: "Chưa có lô nào của sản phẩm này trong hồ sơ.",
    product_more: "Còn nhiều lô hơn số được liệt kê ở đây.",
    languages: "Ngôn ngữ",
};

/// A chain's stage name (`lotline_domain::audit::chain`) in `lang`; other names as they are.
pub(crate) fn stage(lang: &Text, name: &str) -> String {
    const NAMES: [(&str, [&str; 5]); 13] = [
        (
            "farm",
            ["Farm", "Finca", "Exploitation", "Exploração", "Nông trại"],
        ),
        (
            "primary processing",
            [
                "Primary processing",
                "Procesamiento primario",
                "Transformation primaire",
                "Processamento primário",
                "Sơ chế",
            ],
        ),
        (
            "grinding",
            ["Grinding", "Molienda", "Broyage", "Moagem", "Nghiền"],
        ),
        (
            "manufacturing",
            [
                "Manufacturing",
                "Fabricación",
                "Fabrication",
                "Fabrico",
                "Sản xuất",
            ],
        ),
        (
            "brand",
            ["Brand", "Marca", "Marque", "Marca", "Thương hiệu"],
        ),
        (
            "wet mill",
            [
                "Wet mill",
                "Beneficio húmedo",
                "Usine de traitement humide",
                "Via húmida",
                "Sơ chế ướt",
            ],
        ),
        (
            "dry mill",
            [
                "Dry mill",
                "Trilladora",
                "Usine de traitement sec",
                "Via seca",
                "Sơ chế khô",
            ],
        ),
        (
            "roaster",
            [
                "Roaster",
                "Tostador",
                "Torréfacteur",
                "Torrefator",
                "Nhà rang",
            ],
        ),
        (
            "ginner",
            [
                "Ginner",
                "Desmotadora",
                "Égreneur",
                "Descaroçador",
                "Cán bông",
            ],
        ),
        (
            "spinner",
            ["Spinner", "Hilandería", "Filature", "Fiação", "Kéo sợi"],
        ),
        (
            "weaver/knitter",
            [
                "Weaver/knitter",
                "Tejeduría",
                "Tissage/tricotage",
                "Tecelagem/malharia",
                "Dệt/đan",
            ],
        ),
        (
            "wet processing",
            [
                "Wet processing",
                "Acabado húmedo",
                "Ennoblissement",
                "Beneficiamento",
                "Xử lý ướt",
            ],
        ),
        (
            "cut-make-trim",
            [
                "Cut-make-trim",
                "Confección",
                "Confection",
                "Confeção",
                "Cắt may",
            ],
        ),
    ];
    let at = LANGUAGES
        .iter()
        .position(|l| l.code == lang.code)
        .unwrap_or(0);
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or_else(|| name.to_string(), |(_, t)| t[at].to_string())
}

/// The language to answer in: `asked` (a `?lang=` value) if lotline has it, else the best of
/// `accept_language` it has, else English.
pub(crate) fn choose(asked: Option<&str>, accept_language: Option<&str>) -> &'static Text {
    let find = |tag: &str| {
        let primary = tag.split(['-', '_']).next().unwrap_or("").trim();
        LANGUAGES
            .iter()
            .copied()
            .find(|l| l.code.eq_ignore_ascii_case(primary))
    };
    if let Some(text) = asked.and_then(find) {
        return text;
    }
    let mut best: Option<(u16, &'static Text)> = None;
    for range in accept_language.unwrap_or("").split(',') {
        let mut parts = range.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let weight = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(1000, |q| {
                q.trim()
                    .parse::<f32>()
                    .map_or(0, |q| (q.clamp(0.0, 1.0) * 1000.0) as u16)
            });
        if weight == 0 {
            continue;
        }
        if let Some(text) = find(tag)
            && best.is_none_or(|(w, _)| weight > w)
        {
            best = Some((weight, text));
        }
    }
    best.map_or(&EN, |(_, t)| t)
}

/// `template` with `{n}` replaced by `n`.
pub(crate) fn fill(template: &str, n: impl std::fmt::Display) -> String {
    template.replace("{n}", &n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_is_the_best_the_reader_accepts_that_lotline_has() {
        assert_eq!(choose(None, None).code, "en");
        assert_eq!(choose(None, Some("vi-VN,vi;q=0.9,en;q=0.8")).code, "vi");
        assert_eq!(choose(None, Some("de-DE, fr;q=0.7, es;q=0.9")).code, "es");
        assert_eq!(choose(None, Some("pt-BR;q=0, fr")).code, "fr");
        assert_eq!(choose(None, Some("de, ja")).code, "en");
        assert_eq!(choose(Some("fr"), Some("es")).code, "fr");
        assert_eq!(choose(Some("xx"), Some("es")).code, "es");
    }

    #[test]
    fn every_language_names_every_stage() {
        for lang in LANGUAGES {
            assert_eq!(lang.code.len(), 2);
            assert_ne!(stage(lang, "farm"), "farm");
            assert_ne!(stage(lang, "cut-make-trim"), "cut-make-trim");
            assert_eq!(stage(lang, "unheard of"), "unheard of");
        }
        assert_eq!(stage(&FR, "roaster"), "Torréfacteur");
    }
}
